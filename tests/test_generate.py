"""Tests for olist_demo.olist_generator: the synthetic Olist files must look like the real ones."""

from __future__ import annotations

import collections
import csv
from pathlib import Path

import pytest

from olist_demo.olist_generator import OLIST_FILES, generate_olist

# As docs/data.md lists them, in its order.
EXPECTED_HEADERS = {
    "olist_customers_dataset.csv": "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,"
    "customer_state",
    "olist_orders_dataset.csv": "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
    "order_delivered_carrier_date,order_delivered_customer_date,"
    "order_estimated_delivery_date",
    "olist_order_items_dataset.csv": "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,"
    "freight_value",
    "olist_order_payments_dataset.csv": "order_id,payment_sequential,payment_type,payment_installments,payment_value",
    "olist_order_reviews_dataset.csv": "review_id,order_id,review_score,review_comment_title,review_comment_message,"
    "review_creation_date,review_answer_timestamp",
    "olist_products_dataset.csv": "product_id,product_category_name,product_name_lenght,product_description_lenght,"
    "product_photos_qty,product_weight_g,product_length_cm,product_height_cm,"
    "product_width_cm",
    "olist_sellers_dataset.csv": "seller_id,seller_zip_code_prefix,seller_city,seller_state",
    "olist_geolocation_dataset.csv": "geolocation_zip_code_prefix,geolocation_lat,geolocation_lng,geolocation_city,"
    "geolocation_state",
    "product_category_name_translation.csv": "product_category_name,product_category_name_english",
}
STATUSES = {"delivered", "shipped", "canceled", "unavailable", "invoiced", "processing", "created", "approved"}
PAYMENT_TYPES = {"credit_card", "boleto", "voucher", "debit_card", "not_defined"}
HEX = set("0123456789abcdef")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("olist")
    counts = generate_olist(out, scale=0.01, seed=42)
    return out, counts


def read_rows(directory: Path, name: str) -> list[dict[str, str]]:
    with open(directory / name, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def is_hex_id(value: str) -> bool:
    return len(value) == 32 and set(value) <= HEX


def test_file_names_and_headers_match_data_md(generated: tuple[Path, dict[str, int]]) -> None:
    out, counts = generated
    assert list(OLIST_FILES) == list(EXPECTED_HEADERS)
    assert list(counts) == list(EXPECTED_HEADERS)
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED_HEADERS)
    for name, header in EXPECTED_HEADERS.items():
        assert ",".join(OLIST_FILES[name]) == header
        with open(out / name, encoding="utf-8-sig", newline="") as handle:
            assert next(csv.reader(handle)) == header.split(",")


def test_returned_counts_match_rows_in_files(generated: tuple[Path, dict[str, int]]) -> None:
    out, counts = generated
    for name in EXPECTED_HEADERS:
        assert counts[name] == len(read_rows(out, name)), name
    assert counts["product_category_name_translation.csv"] == 71
    assert counts["olist_orders_dataset.csv"] == round(99_441 * 0.01)
    assert counts["olist_customers_dataset.csv"] == counts["olist_orders_dataset.csv"]


def test_quoting_and_line_endings(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    for name in ("olist_customers_dataset.csv", "olist_sellers_dataset.csv", "olist_geolocation_dataset.csv"):
        lines = (out / name).read_bytes().split(b"\n")
        assert lines[0].startswith(b'"') and not lines[0].endswith(b"\r")
        assert lines[1].startswith(b'"') and lines[-1] == b""
    sellers = (out / "olist_sellers_dataset.csv").read_text(encoding="utf-8").splitlines()
    zip_field = sellers[1].split(",")[1]
    assert zip_field.startswith('"') and zip_field.endswith('"') and len(zip_field) == 7
    for name in (
        "olist_orders_dataset.csv",
        "olist_order_items_dataset.csv",
        "olist_order_payments_dataset.csv",
        "olist_products_dataset.csv",
    ):
        data = (out / name).read_bytes()
        assert b'"' not in data and b"\r" not in data and data.endswith(b"\n"), name


def test_translation_file_bom_crlf_no_final_newline(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    data = (out / "product_category_name_translation.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfproduct_category_name,")
    assert not data.endswith(b"\n") and not data.endswith(b"\r")
    body = data[3:]
    assert body.count(b"\r\n") == 71
    assert body.count(b"\n") == 71  # no bare LF
    assert b"beleza_saude,health_beauty\r\n" in body


def test_deterministic_bytes(tmp_path: Path) -> None:
    first = generate_olist(tmp_path / "a", scale=0.01, seed=7)
    second = generate_olist(tmp_path / "b", scale=0.01, seed=7, parallel=True)  # geolocation in a second process
    other = generate_olist(tmp_path / "c", scale=0.01, seed=8)
    assert first == second
    for name in OLIST_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "olist_orders_dataset.csv").read_bytes() != (
        tmp_path / "c" / "olist_orders_dataset.csv"
    ).read_bytes()
    assert other["product_category_name_translation.csv"] == 71


def test_foreign_keys_are_consistent(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    customers = read_rows(out, "olist_customers_dataset.csv")
    orders = read_rows(out, "olist_orders_dataset.csv")
    items = read_rows(out, "olist_order_items_dataset.csv")
    payments = read_rows(out, "olist_order_payments_dataset.csv")
    reviews = read_rows(out, "olist_order_reviews_dataset.csv")
    product_ids = {row["product_id"] for row in read_rows(out, "olist_products_dataset.csv")}
    seller_ids = {row["seller_id"] for row in read_rows(out, "olist_sellers_dataset.csv")}

    customer_ids = [row["customer_id"] for row in customers]
    order_ids = [row["order_id"] for row in orders]
    assert len(set(customer_ids)) == len(customer_ids)
    assert len(set(order_ids)) == len(order_ids)
    assert all(is_hex_id(value) for value in customer_ids + order_ids)
    assert sorted(row["customer_id"] for row in orders) == sorted(customer_ids)

    order_set = set(order_ids)
    assert {row["order_id"] for row in items} <= order_set
    assert {row["order_id"] for row in payments} <= order_set
    assert {row["order_id"] for row in reviews} <= order_set
    assert {row["product_id"] for row in items} <= product_ids
    assert {row["seller_id"] for row in items} <= seller_ids


def test_statuses_dates_and_timestamp_formats(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    orders = read_rows(out, "olist_orders_dataset.csv")
    assert {row["order_status"] for row in orders} == STATUSES
    for row in orders:
        assert "2016-09-04" <= row["order_purchase_timestamp"] <= "2018-10-17 23:59:59"
        assert len(row["order_purchase_timestamp"]) == 19
        assert row["order_estimated_delivery_date"].endswith(" 00:00:00")
        if row["order_status"] == "created":
            assert row["order_approved_at"] == row["order_delivered_carrier_date"] == ""
        if row["order_status"] in ("approved", "invoiced", "processing"):
            assert row["order_approved_at"] and not row["order_delivered_carrier_date"]
        if row["order_status"] == "shipped":
            assert row["order_delivered_carrier_date"]
            assert not row["order_delivered_customer_date"]
        if row["order_approved_at"]:
            assert row["order_approved_at"] >= row["order_purchase_timestamp"]
    delivered = [row for row in orders if row["order_status"] == "delivered"]
    assert sum(1 for row in delivered if row["order_delivered_customer_date"]) > 0.99 * len(delivered)


def test_payment_types_and_values(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    payments = read_rows(out, "olist_order_payments_dataset.csv")
    items = read_rows(out, "olist_order_items_dataset.csv")
    assert {row["payment_type"] for row in payments} == PAYMENT_TYPES
    assert any(float(row["payment_value"]) == 0 for row in payments)
    assert all(0 <= int(row["payment_installments"]) <= 24 for row in payments)
    assert any(int(row["payment_sequential"]) >= 3 for row in payments)
    for row in payments + items:
        for field in ("payment_value", "price", "freight_value"):
            if field in row:
                whole, decimals = row[field].split(".")
                assert whole.isdigit() and len(decimals) in (1, 2)
    # payments usually add up to price + freight of the items
    item_total: collections.Counter[str] = collections.Counter()
    for row in items:
        item_total[row["order_id"]] += round(float(row["price"]) * 100)
        item_total[row["order_id"]] += round(float(row["freight_value"]) * 100)
    paid: collections.Counter[str] = collections.Counter()
    for row in payments:
        paid[row["order_id"]] += round(float(row["payment_value"]) * 100)
    matching = sum(1 for order_id in item_total if paid[order_id] == item_total[order_id])
    assert matching >= 0.98 * len(item_total)


def test_orders_without_items_and_item_numbering(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    orders = read_rows(out, "olist_orders_dataset.csv")
    items = read_rows(out, "olist_order_items_dataset.csv")
    numbers: dict[str, list[int]] = collections.defaultdict(list)
    for row in items:
        numbers[row["order_id"]].append(int(row["order_item_id"]))
    without = [row for row in orders if row["order_id"] not in numbers]
    assert 1 <= len(without) <= 0.03 * len(orders)
    assert {row["order_status"] for row in without} <= {"canceled", "unavailable", "created"}
    for ids in numbers.values():
        assert ids == list(range(1, len(ids) + 1))
    sizes = collections.Counter(len(ids) for ids in numbers.values())
    assert sizes.most_common(1)[0][0] == 1 and max(sizes) >= 2


def test_reviews_shared_ids_and_pairs_unique(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    reviews = read_rows(out, "olist_order_reviews_dataset.csv")
    pairs = [(row["review_id"], row["order_id"]) for row in reviews]
    assert len(set(pairs)) == len(pairs)
    per_review = collections.Counter(row["review_id"] for row in reviews)
    assert any(n >= 2 for n in per_review.values())
    per_order = collections.Counter(row["order_id"] for row in reviews)
    assert any(n >= 2 for n in per_order.values())
    for row in reviews:
        assert row["review_score"] in {"1", "2", "3", "4", "5"}
        assert row["review_creation_date"].endswith(" 00:00:00")
        assert row["review_answer_timestamp"] > row["review_creation_date"]
    empty_titles = sum(1 for row in reviews if not row["review_comment_title"])
    assert 0.8 < empty_titles / len(reviews) < 0.95


def test_review_message_with_quotes_commas_and_line_breaks(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    messages = [row["review_comment_message"] for row in read_rows(out, "olist_order_reviews_dataset.csv")]
    tricky = [m for m in messages if '"' in m and "," in m and "\r\n" in m and "\n" in m.replace("\r\n", "")]
    assert tricky
    assert any("ã" in m or "ó" in m for m in messages)
    raw = (out / "olist_order_reviews_dataset.csv").read_bytes()
    assert b'""' in raw and b"\r\n" in raw
    assert "Não".encode() in raw


def test_zip_prefixes_are_five_char_strings(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    geo = read_rows(out, "olist_geolocation_dataset.csv")
    geo_zips = {row["geolocation_zip_code_prefix"] for row in geo}
    customer_zips = {row["customer_zip_code_prefix"] for row in read_rows(out, "olist_customers_dataset.csv")}
    seller_zips = {row["seller_zip_code_prefix"] for row in read_rows(out, "olist_sellers_dataset.csv")}
    for zips in (geo_zips, customer_zips, seller_zips):
        assert all(len(z) == 5 and z.isdigit() for z in zips)
    assert any(z.startswith("0") for z in geo_zips)
    assert any(z.startswith("0") for z in customer_zips)
    assert customer_zips <= geo_zips and seller_zips <= geo_zips


def test_geolocation_duplicates_and_accents(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    lines = (out / "olist_geolocation_dataset.csv").read_text(encoding="utf-8").splitlines()[1:]
    duplicate_share = 1 - len(set(lines)) / len(lines)
    assert 0.15 < duplicate_share < 0.35
    cities = {row["geolocation_city"] for row in read_rows(out, "olist_geolocation_dataset.csv")}
    assert "são paulo" in cities and "sao paulo" in cities
    per_zip = collections.Counter(line.split(",")[0] for line in lines)
    assert max(per_zip.values()) > 1


def test_customers_unique_ids_repeat(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    customers = read_rows(out, "olist_customers_dataset.csv")
    people = {row["customer_unique_id"] for row in customers}
    assert 0.93 * len(customers) < len(people) < len(customers)
    assert all(row["customer_state"].isupper() and len(row["customer_state"]) == 2 for row in customers)


def test_categories_untranslated_and_missing_attributes(generated: tuple[Path, dict[str, int]]) -> None:
    out, _ = generated
    products = read_rows(out, "olist_products_dataset.csv")
    translated = {row["product_category_name"] for row in read_rows(out, "product_category_name_translation.csv")}
    assert len(translated) == 71
    used = {row["product_category_name"] for row in products if row["product_category_name"]}
    assert used - translated == {"pc_gamer", "portateis_cozinha_e_preparadores_de_alimentos"}
    no_category = [row for row in products if not row["product_category_name"]]
    assert no_category
    assert all(row["product_name_lenght"] == row["product_photos_qty"] == "" for row in no_category)
    assert any(row["product_weight_g"] == "" for row in products)
    assert all(row["product_weight_g"].isdigit() for row in products if row["product_weight_g"])


def test_row_counts_scale_linearly(tmp_path: Path, generated: tuple[Path, dict[str, int]]) -> None:
    _, small = generated
    double = generate_olist(tmp_path, scale=0.02, seed=42)
    for name in (
        "olist_orders_dataset.csv",
        "olist_order_items_dataset.csv",
        "olist_order_payments_dataset.csv",
        "olist_order_reviews_dataset.csv",
        "olist_products_dataset.csv",
        "olist_geolocation_dataset.csv",
    ):
        assert 1.8 < double[name] / small[name] < 2.2, name
    assert double["product_category_name_translation.csv"] == 71


def test_tiny_scale_still_works(tmp_path: Path) -> None:
    counts = generate_olist(tmp_path, scale=0.001)
    assert counts["olist_orders_dataset.csv"] == 99
    assert counts["olist_sellers_dataset.csv"] >= 3
    assert counts["olist_products_dataset.csv"] >= 10
    assert counts["olist_geolocation_dataset.csv"] >= 5


def test_progress_callback_reports_each_file(tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    counts = generate_olist(tmp_path, scale=0.01, progress=lambda f, n: calls.append((f, n)))
    last = dict(calls)
    assert last == counts
    geolocation_calls = [n for name, n in calls if name == "olist_geolocation_dataset.csv"]
    assert geolocation_calls == [counts["olist_geolocation_dataset.csv"]]  # below 100k rows


def test_rejects_non_positive_scale(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_olist(tmp_path, scale=0)
