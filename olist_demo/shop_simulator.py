"""The change simulator: one simulated hour of shop activity in the source database.

Each hour places new orders (a customer row, the order, its items and payments, as the shop
writes them) and moves existing orders along their life cycle: created -> approved ->
shipped -> delivered (with a review), and some approved orders are canceled. The database
stamps every touched row's cursor column, so each hour gives the incremental pipeline real
work. The simulated business clock continues from the latest purchase in the source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from loaders.sources import SourceEngine

PAYMENT_TYPES = ("credit_card", "credit_card", "credit_card", "boleto", "voucher", "debit_card")


@dataclass
class HourReport:
    hour_start: datetime
    new_orders: int = 0
    new_items: int = 0
    new_payments: int = 0
    approved: int = 0
    shipped: int = 0
    delivered: int = 0
    canceled: int = 0
    new_reviews: int = 0


def _hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


class _Shop:
    def __init__(self, db: SourceEngine):
        self.db = db
        self.p = db.paramstyle

    def q(self, name: str) -> str:
        return self.db.quote(name)

    def insert(self, table: str, row: dict) -> None:
        cols = ", ".join(self.q(c) for c in row)
        self.db.execute(
            f"INSERT INTO {self.q(table)} ({cols}) VALUES ({', '.join([self.p] * len(row))})",
            tuple(row.values()),
        )

    def ids(self, sql: str, params: tuple = ()) -> list[str]:
        return [r[0] for r in self.db.execute(sql.replace("?", self.p), params)]


def simulate_hour(
    db: SourceEngine, rng: random.Random, orders_per_hour: int = 20, progress_per_hour: int = 60
) -> HourReport:
    """Apply one hour of changes in one transaction; return what changed."""
    shop = _Shop(db)
    q = shop.q
    latest = db.execute(f"SELECT max({q('order_purchase_timestamp')}) FROM {q('orders')}")[0][0]
    if latest is None:
        raise ValueError("the source has no orders: load the Olist data first (dwh source load)")
    start = latest if isinstance(latest, datetime) else datetime.fromisoformat(str(latest))
    start = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    report = HourReport(start)
    products = shop.ids(f"SELECT {q('product_id')} FROM {q('products')} ORDER BY {q('product_id')} LIMIT 2000")
    sellers = shop.ids(f"SELECT {q('seller_id')} FROM {q('sellers')} ORDER BY {q('seller_id')} LIMIT 500")
    zips = db.execute(
        f"SELECT {q('customer_zip_code_prefix')}, {q('customer_city')}, {q('customer_state')} "
        f"FROM {q('customers')} ORDER BY {q('customer_id')} LIMIT 500"
    )

    def moment() -> datetime:
        return start + timedelta(seconds=rng.randrange(3600))

    with db.transaction():
        for _ in range(orders_per_hour):
            _new_order(shop, rng, moment(), products, sellers, zips, report)
        steps = [
            ("created", "approved", "order_approved_at"),
            ("approved", "shipped", "order_delivered_carrier_date"),
            ("invoiced", "shipped", "order_delivered_carrier_date"),
            ("processing", "shipped", "order_delivered_carrier_date"),
            ("shipped", "delivered", "order_delivered_customer_date"),
        ]
        share = max(1, progress_per_hour // len(steps))
        for before, after, column in steps:
            candidates = shop.ids(
                f"SELECT {q('order_id')} FROM {q('orders')} WHERE {q('order_status')} = ? "
                f"ORDER BY {q('order_id')} LIMIT 2000",
                (before,),
            )
            for order_id in rng.sample(candidates, min(share, len(candidates))):
                if before == "approved" and rng.random() < 0.1:
                    _advance(shop, order_id, "canceled", None, moment(), rng, report)
                else:
                    _advance(shop, order_id, after, column, moment(), rng, report)
    return report


def _new_order(shop: _Shop, rng, at: datetime, products, sellers, zips, report: HourReport) -> None:
    customer_id, order_id = _hex(rng), _hex(rng)
    zip_code, city, state = rng.choice(zips)
    shop.insert(
        "customers",
        {
            "customer_id": customer_id,
            "customer_unique_id": _hex(rng),
            "customer_zip_code_prefix": zip_code,
            "customer_city": city,
            "customer_state": state,
        },
    )
    status = rng.choice(("created", "approved", "approved", "approved"))
    shop.insert(
        "orders",
        {
            "order_id": order_id,
            "customer_id": customer_id,
            "order_status": status,
            "order_purchase_timestamp": _ts(at),
            "order_approved_at": _ts(at + timedelta(minutes=rng.randrange(5, 50))) if status == "approved" else None,
            "order_delivered_carrier_date": None,
            "order_delivered_customer_date": None,
            "order_estimated_delivery_date": _ts(
                (at + timedelta(days=rng.randrange(10, 30))).replace(hour=0, minute=0, second=0)
            ),
        },
    )
    total = 0.0
    for item in range(1, 1 + rng.choice((1, 1, 1, 2, 3))):
        price, freight = round(rng.uniform(10, 400), 2), round(rng.uniform(5, 40), 2)
        total += price + freight
        shop.insert(
            "order_items",
            {
                "order_id": order_id,
                "order_item_id": item,
                "product_id": rng.choice(products),
                "seller_id": rng.choice(sellers),
                "shipping_limit_date": _ts(at + timedelta(days=6)),
                "price": f"{price:.2f}",
                "freight_value": f"{freight:.2f}",
            },
        )
        report.new_items += 1
    shop.insert(
        "order_payments",
        {
            "order_id": order_id,
            "payment_sequential": 1,
            "payment_type": rng.choice(PAYMENT_TYPES),
            "payment_installments": rng.choice((1, 1, 2, 3, 10)),
            "payment_value": f"{total:.2f}",
        },
    )
    report.new_orders += 1
    report.new_payments += 1


def _advance(
    shop: _Shop, order_id: str, status: str, column: str | None, at: datetime, rng: random.Random, report: HourReport
) -> None:
    q, p = shop.q, shop.p
    sets = [f"{q('order_status')} = {p}"]
    params: list = [status]
    if column:
        sets.append(f"{q(column)} = {p}")
        params.append(_ts(at))
    shop.db.execute(f"UPDATE {q('orders')} SET {', '.join(sets)} WHERE {q('order_id')} = {p}", (*params, order_id))
    setattr(report, status, getattr(report, status) + 1)
    if status == "delivered":
        created = at.replace(hour=0, minute=0, second=0) + timedelta(days=1)
        shop.insert(
            "order_reviews",
            {
                "review_id": _hex(rng),
                "order_id": order_id,
                "review_score": rng.choice((5, 5, 5, 4, 4, 3, 1)),
                "review_comment_title": None,
                "review_comment_message": rng.choice(
                    (None, None, "Chegou antes do prazo, recomendo!", 'Não chegou tudo, "faltou" um item')
                ),
                "review_creation_date": _ts(created),
                "review_answer_timestamp": _ts(created + timedelta(hours=rng.randrange(2, 48))),
            },
        )
        report.new_reviews += 1
