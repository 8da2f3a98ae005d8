"""Synthetic stand-in for the Brazilian Olist e-commerce dataset (Kaggle).

`generate_olist` writes the nine CSV files of the public Olist dataset with the same file
names, headers, column order, quoting, line endings and data quirks as the real download
(see docs/data.md, "The Olist tables"), so that loaders and dbt models can be developed and
tested without the real files.  At ``scale=1.0`` the row counts are close to the real dataset
(99,441 orders, about 112.6k items, 103.9k payments, 99.2k reviews, 32,951 products,
3,095 sellers, about 1.0M geolocation rows, 71 category translations); other scales are linear.

Quirks reproduced on purpose:

* 32-character lowercase hex ids; one ``customer_id`` per order, while about 3% of people
  (``customer_unique_id``) have several customer ids.
* customers, sellers and geolocation quote the header, the ids and the zip code prefixes
  (``"3442f8...","13023",campinas,SP``); the other files quote only where a field needs it.
* ``product_category_name_translation.csv`` starts with a UTF-8 BOM, uses CRLF and has no
  newline after its last line; every other file uses ``\\n``.
* zip code prefixes are 5-character strings, many with a leading zero (``01037``).
* timestamps are ``YYYY-MM-DD HH:MM:SS``; estimated delivery dates and review creation dates
  always end in ``00:00:00``; dates that have not happened yet (given the order status) are
  empty fields.
* all eight order statuses and all five payment types occur (for ``scale >= 0.01``); about
  0.78% of orders (unavailable, some canceled) have no items; a few payments are ``0.00``;
  money has two decimals but sometimes one (``144.0``).
* review comments are Portuguese UTF-8 text with commas, doubled double quotes, and CRLF / LF
  line breaks inside quoted fields; ``review_id`` is not unique (a review can cover the
  orders a person placed together), ``(review_id, order_id)`` is; some orders have two
  reviews and about 1% have none.
* about 1.85% of products have no category and no name/description/photo attributes, a few
  have no weight or dimensions; two categories used by products (``pc_gamer`` and
  ``portateis_cozinha_e_preparadores_de_alimentos``) are missing from the translation file.
* geolocation has several rows per zip prefix, about 26% exact duplicate rows, and city
  names both with and without accents ("são paulo", "sao paulo").

Output is deterministic: the same ``(scale, seed)`` gives byte-identical files.  Orders,
customers, items, payments and reviews are written in one streaming pass, so memory does not
grow with the number of orders (only the product, seller and zip prefix tables are held).
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple, TextIO

__all__ = ["generate_olist", "OLIST_FILES"]

CUSTOMERS = "olist_customers_dataset.csv"
ORDERS = "olist_orders_dataset.csv"
ITEMS = "olist_order_items_dataset.csv"
PAYMENTS = "olist_order_payments_dataset.csv"
REVIEWS = "olist_order_reviews_dataset.csv"
PRODUCTS = "olist_products_dataset.csv"
SELLERS = "olist_sellers_dataset.csv"
GEOLOCATION = "olist_geolocation_dataset.csv"
TRANSLATION = "product_category_name_translation.csv"

OLIST_FILES: dict[str, tuple[str, ...]] = {
    CUSTOMERS: (
        "customer_id",
        "customer_unique_id",
        "customer_zip_code_prefix",
        "customer_city",
        "customer_state",
    ),
    ORDERS: (
        "order_id",
        "customer_id",
        "order_status",
        "order_purchase_timestamp",
        "order_approved_at",
        "order_delivered_carrier_date",
        "order_delivered_customer_date",
        "order_estimated_delivery_date",
    ),
    ITEMS: (
        "order_id",
        "order_item_id",
        "product_id",
        "seller_id",
        "shipping_limit_date",
        "price",
        "freight_value",
    ),
    PAYMENTS: (
        "order_id",
        "payment_sequential",
        "payment_type",
        "payment_installments",
        "payment_value",
    ),
    REVIEWS: (
        "review_id",
        "order_id",
        "review_score",
        "review_comment_title",
        "review_comment_message",
        "review_creation_date",
        "review_answer_timestamp",
    ),
    PRODUCTS: (
        "product_id",
        "product_category_name",
        "product_name_lenght",
        "product_description_lenght",
        "product_photos_qty",
        "product_weight_g",
        "product_length_cm",
        "product_height_cm",
        "product_width_cm",
    ),
    SELLERS: ("seller_id", "seller_zip_code_prefix", "seller_city", "seller_state"),
    GEOLOCATION: (
        "geolocation_zip_code_prefix",
        "geolocation_lat",
        "geolocation_lng",
        "geolocation_city",
        "geolocation_state",
    ),
    TRANSLATION: ("product_category_name", "product_category_name_english"),
}

ProgressCallback = Callable[[str, int], None]

# --------------------------------------------------------------------------------------------
# Sizes of the real dataset (scale = 1.0) and minimum sizes at tiny scales.

REAL_ORDERS = 99_441
REAL_PRODUCTS = 32_951
REAL_SELLERS = 3_095
REAL_GEOLOCATION_ROWS = 1_000_163
REAL_ZIP_PREFIXES = 19_015
MAX_ZIP_PREFIXES = 30_000  # 5-digit prefixes run out: the pool stops growing here
MIN_ORDERS = 10
MIN_PRODUCTS = 10
MIN_SELLERS = 3
MIN_ZIP_PREFIXES = 5
PROGRESS_EVERY = 100_000

FIRST_PURCHASE = datetime(2016, 9, 4, 21, 15, 19)
LAST_PURCHASE = datetime(2018, 10, 17, 17, 30, 18)
BULK_START = datetime(2017, 1, 5)
BULK_END = datetime(2018, 9, 3, 9, 6, 57)

# --------------------------------------------------------------------------------------------
# Product categories: (Portuguese name, English name or None when untranslated, weight).
# Weights are roughly the real number of products per category.  The order of the translated
# ones is the order of the real translation file; English typos are the real ones.

CATEGORIES: tuple[tuple[str, str | None, int], ...] = (
    ("beleza_saude", "health_beauty", 2444),
    ("informatica_acessorios", "computers_accessories", 1639),
    ("automotivo", "auto", 1900),
    ("cama_mesa_banho", "bed_bath_table", 3029),
    ("moveis_decoracao", "furniture_decor", 2657),
    ("esporte_lazer", "sports_leisure", 2867),
    ("perfumaria", "perfumery", 868),
    ("utilidades_domesticas", "housewares", 2335),
    ("telefonia", "telephony", 1134),
    ("relogios_presentes", "watches_gifts", 1329),
    ("alimentos_bebidas", "food_drink", 104),
    ("bebes", "baby", 919),
    ("papelaria", "stationery", 849),
    ("tablets_impressao_imagem", "tablets_printing_image", 9),
    ("brinquedos", "toys", 1411),
    ("telefonia_fixa", "fixed_telephony", 116),
    ("ferramentas_jardim", "garden_tools", 753),
    ("fashion_bolsas_e_acessorios", "fashion_bags_accessories", 849),
    ("eletroportateis", "small_appliances", 231),
    ("consoles_games", "consoles_games", 317),
    ("audio", "audio", 58),
    ("fashion_calcados", "fashion_shoes", 173),
    ("cool_stuff", "cool_stuff", 789),
    ("malas_acessorios", "luggage_accessories", 349),
    ("climatizacao", "air_conditioning", 124),
    ("construcao_ferramentas_construcao", "construction_tools_construction", 400),
    ("moveis_cozinha_area_de_servico_jantar_e_jardim", "kitchen_dining_laundry_garden_furniture", 94),
    ("construcao_ferramentas_jardim", "costruction_tools_garden", 88),
    ("fashion_roupa_masculina", "fashion_male_clothing", 95),
    ("pet_shop", "pet_shop", 719),
    ("moveis_escritorio", "office_furniture", 309),
    ("market_place", "market_place", 104),
    ("eletronicos", "electronics", 517),
    ("eletrodomesticos", "home_appliances", 370),
    ("artigos_de_festas", "party_supplies", 26),
    ("casa_conforto", "home_confort", 111),
    ("construcao_ferramentas_ferramentas", "costruction_tools_tools", 39),
    ("agro_industria_e_comercio", "agro_industry_and_commerce", 74),
    ("moveis_colchao_e_estofado", "furniture_mattress_and_upholstery", 10),
    ("livros_tecnicos", "books_technical", 123),
    ("casa_construcao", "home_construction", 225),
    ("instrumentos_musicais", "musical_instruments", 289),
    ("moveis_sala", "furniture_living_room", 156),
    ("construcao_ferramentas_iluminacao", "construction_tools_lights", 78),
    ("industria_comercio_e_negocios", "industry_commerce_and_business", 68),
    ("alimentos", "food", 82),
    ("artes", "art", 55),
    ("moveis_quarto", "furniture_bedroom", 45),
    ("livros_interesse_geral", "books_general_interest", 216),
    ("construcao_ferramentas_seguranca", "construction_tools_safety", 91),
    ("fashion_underwear_e_moda_praia", "fashion_underwear_beach", 53),
    ("fashion_esporte", "fashion_sport", 19),
    ("sinalizacao_e_seguranca", "signaling_and_security", 93),
    ("pcs", "computers", 30),
    ("artigos_de_natal", "christmas_supplies", 128),
    ("fashion_roupa_feminina", "fashio_female_clothing", 48),
    ("eletrodomesticos_2", "home_appliances_2", 90),
    ("livros_importados", "books_imported", 31),
    ("bebidas", "drinks", 81),
    ("cine_foto", "cine_photo", 28),
    ("la_cuisine", "la_cuisine", 10),
    ("musica", "music", 27),
    ("casa_conforto_2", "home_comfort_2", 5),
    ("portateis_casa_forno_e_cafe", "small_appliances_home_oven_and_coffee", 10),
    ("cds_dvds_musicais", "cds_dvds_musicals", 1),
    ("dvds_blu_ray", "dvds_blu_ray", 48),
    ("flores", "flowers", 14),
    ("artes_e_artesanato", "arts_and_craftmanship", 19),
    ("fraldas_higiene", "diapers_and_hygiene", 12),
    ("fashion_roupa_infanto_juvenil", "fashion_childrens_clothes", 5),
    ("seguros_e_servicos", "security_and_services", 2),
    ("pc_gamer", None, 3),
    ("portateis_cozinha_e_preparadores_de_alimentos", None, 10),
)
UNTRANSLATED_CATEGORIES = tuple(name for name, english, _ in CATEGORIES if english is None)

# --------------------------------------------------------------------------------------------
# Brazilian states: zip prefix ranges, approximate capital coordinates, share of customers
# and a few city names (with accents; the first one is the capital).


class State(NamedTuple):
    code: str
    zip_ranges: tuple[tuple[int, int], ...]
    lat: float
    lng: float
    weight: float
    cities: tuple[str, ...]


STATES: tuple[State, ...] = (
    State(
        "SP",
        ((1000, 19999),),
        -23.55,
        -46.63,
        42.0,
        (
            "são paulo",
            "campinas",
            "guarulhos",
            "santo andré",
            "são bernardo do campo",
            "osasco",
            "ribeirão preto",
            "sorocaba",
            "santos",
            "são josé dos campos",
            "jundiaí",
            "piracicaba",
            "franca",
            "bauru",
            "mogi das cruzes",
            "taubaté",
        ),
    ),
    State(
        "RJ",
        ((20000, 28999),),
        -22.91,
        -43.17,
        12.9,
        (
            "rio de janeiro",
            "niterói",
            "nova iguaçu",
            "duque de caxias",
            "são gonçalo",
            "petrópolis",
            "volta redonda",
            "campos dos goytacazes",
        ),
    ),
    State(
        "MG",
        ((30000, 39999),),
        -19.92,
        -43.94,
        11.7,
        (
            "belo horizonte",
            "uberlândia",
            "contagem",
            "juiz de fora",
            "betim",
            "montes claros",
            "poços de caldas",
            "divinópolis",
        ),
    ),
    State(
        "RS",
        ((90000, 99999),),
        -30.03,
        -51.23,
        5.5,
        ("porto alegre", "caxias do sul", "pelotas", "canoas", "santa maria", "novo hamburgo"),
    ),
    State(
        "PR",
        ((80000, 87999),),
        -25.43,
        -49.27,
        5.1,
        ("curitiba", "londrina", "maringá", "ponta grossa", "cascavel", "foz do iguaçu"),
    ),
    State(
        "SC",
        ((88000, 89999),),
        -27.59,
        -48.55,
        3.7,
        ("florianópolis", "joinville", "blumenau", "são josé", "itajaí", "chapecó", "criciúma"),
    ),
    State(
        "BA",
        ((40000, 48999),),
        -12.97,
        -38.50,
        3.4,
        ("salvador", "feira de santana", "vitória da conquista", "camaçari", "ilhéus"),
    ),
    State("DF", ((70000, 72799), (73000, 73699)), -15.79, -47.88, 2.2, ("brasília", "taguatinga", "ceilândia", "gama")),
    State("ES", ((29000, 29999),), -20.32, -40.34, 2.0, ("vitória", "vila velha", "serra", "cariacica", "guarapari")),
    State(
        "GO",
        ((72800, 72999), (73700, 76799)),
        -16.68,
        -49.25,
        2.0,
        ("goiânia", "anápolis", "aparecida de goiânia", "rio verde"),
    ),
    State(
        "PE",
        ((50000, 56999),),
        -8.05,
        -34.88,
        1.7,
        ("recife", "jaboatão dos guararapes", "olinda", "caruaru", "petrolina"),
    ),
    State("CE", ((60000, 63999),), -3.73, -38.52, 1.3, ("fortaleza", "caucaia", "juazeiro do norte", "sobral")),
    State("PA", ((66000, 68899),), -1.46, -48.50, 1.0, ("belém", "ananindeua", "santarém", "marabá")),
    State("MT", ((78000, 78899),), -15.60, -56.10, 0.9, ("cuiabá", "várzea grande", "rondonópolis", "sinop")),
    State("MA", ((65000, 65999),), -2.53, -44.30, 0.75, ("são luís", "imperatriz", "caxias")),
    State("MS", ((79000, 79999),), -20.44, -54.65, 0.7, ("campo grande", "dourados", "três lagoas")),
    State("PB", ((58000, 58999),), -7.12, -34.86, 0.54, ("joão pessoa", "campina grande", "patos")),
    State("PI", ((64000, 64999),), -5.09, -42.80, 0.5, ("teresina", "parnaíba", "picos")),
    State("RN", ((59000, 59999),), -5.79, -35.21, 0.49, ("natal", "mossoró", "parnamirim")),
    State("AL", ((57000, 57999),), -9.67, -35.74, 0.4, ("maceió", "arapiraca")),
    State("SE", ((49000, 49999),), -10.91, -37.07, 0.35, ("aracaju", "nossa senhora do socorro", "lagarto")),
    State("TO", ((77000, 77999),), -10.18, -48.33, 0.28, ("palmas", "araguaína", "gurupi")),
    State("RO", ((76800, 76999),), -8.76, -63.90, 0.25, ("porto velho", "ji-paraná", "ariquemes")),
    State("AM", ((69000, 69299), (69400, 69899)), -3.12, -60.02, 0.15, ("manaus", "parintins", "itacoatiara")),
    State("AC", ((69900, 69999),), -9.97, -67.81, 0.08, ("rio branco", "cruzeiro do sul")),
    State("AP", ((68900, 68999),), 0.03, -51.07, 0.07, ("macapá", "santana")),
    State("RR", ((69300, 69399),), 2.82, -60.67, 0.05, ("boa vista", "rorainópolis")),
)
SAO_PAULO_CITY_PREFIX_END = 8500  # prefixes 01000-08499 belong to the city of São Paulo

# --------------------------------------------------------------------------------------------
# Order, item, payment and review distributions (from the real files, rounded).

ORDER_STATUSES: tuple[tuple[str, int], ...] = (
    ("delivered", 96_478),
    ("shipped", 1_107),
    ("canceled", 625),
    ("unavailable", 609),
    ("invoiced", 314),
    ("processing", 301),
    ("created", 5),
    ("approved", 2),
)
# Index n is the weight of "n items in the order" (index 0 unused).
ITEMS_PER_ORDER: tuple[int, ...] = (
    0,
    88_863,
    7_516,
    1_322,
    505,
    204,
    198,
    22,
    8,
    3,
    8,
    4,
    5,
    1,
    2,
    2,
    0,
    0,
    0,
    0,
    2,
    1,
)
SINGLE_PAYMENT_TYPES: tuple[tuple[str, float], ...] = (
    ("credit_card", 75.5),
    ("boleto", 19.9),
    ("voucher", 0.8),
    ("debit_card", 1.55),
    ("not_defined", 0.003),
)
# Index n is the weight of "n installments" for a credit card payment.
CARD_INSTALLMENTS: tuple[float, ...] = (
    0.003,
    33.0,
    16.0,
    13.5,
    9.3,
    6.9,
    5.1,
    2.1,
    5.5,
    0.8,
    6.9,
    0.03,
    0.02,
    0.02,
    0.02,
    0.1,
    0.01,
    0.01,
    0.03,
    0.0,
    0.02,
    0.0,
    0.0,
    0.0,
    0.02,
)
REVIEW_SCORES_HAPPY: tuple[int, ...] = (0, 115, 32, 82, 193, 578)
REVIEW_SCORES_UNHAPPY: tuple[int, ...] = (0, 35, 10, 15, 15, 25)
MESSAGE_PROBABILITY = {1: 0.72, 2: 0.67, 3: 0.52, 4: 0.3, 5: 0.33}
TITLE_PROBABILITY = 0.117

REVIEW_TITLES: tuple[str, ...] = (
    "recomendo",
    "Recomendo",
    "Ótimo",
    "Excelente",
    "Muito bom",
    "Super recomendo",
    "Bom",
    "Não recebi",
    "Péssimo",
    "Produto com defeito",
    "Atraso na entrega",
    "Nota 10",
    "Amei!!!",
    "Chegou rápido",
    "Ótimo produto",
    "Decepcionado",
)
HAPPY_SENTENCES: tuple[str, ...] = (
    "Produto ótimo, recomendo!",
    "Chegou antes do prazo.",
    "Muito bom, entrega rápida.",
    "Excelente qualidade",
    "Tudo certo, obrigado",
    "Recomendo a loja",
    "Produto de ótima qualidade, chegou bem embalado.",
    "Gostei muito, superou minhas expectativas",
    "Entrega super rápida, parabéns!",
    "O produto é exatamente como na foto",
    'Comprei como "presente" e a pessoa adorou.',
    "Bom custo-benefício",
)
NEUTRAL_SENTENCES: tuple[str, ...] = (
    "O produto é bom, mas a entrega atrasou.",
    "Razoável",
    "Ainda não testei",
    "Poderia ser melhor",
    "Chegou com a caixa amassada, mas o produto está ok",
    "A cor é um pouco diferente da foto.",
)
UNHAPPY_SENTENCES: tuple[str, ...] = (
    "Não chegou",
    "Não recebi o produto até agora",
    "Produto veio com defeito",
    "Péssimo atendimento, não recomendo",
    "Comprei 2 unidades e só chegou 1",
    'Veio "paralelo", não é original',
    "Produto diferente do anunciado, quero devolução",
    'A embalagem dizia "frágil" e chegou quebrado.',
    "Ninguém responde os e-mails.",
)
SENTENCE_SEPARATORS: tuple[str, ...] = (" ", " ", " ", ". ", ", ", "\r\n", "\n", "\r\n\r\n")
# Written at a fixed order so that every output of scale >= 0.01 holds one: a comma, doubled
# quotes, CRLF and LF inside one quoted field.
TRICKY_MESSAGE = 'Produto ótimo, recomendo!\r\nVeio "igual" ao anunciado.\nObrigado, Olist.'

# Orders whose content is forced (spread evenly over the order stream) so that the rare
# quirks are present even in small outputs.
FORCED_TAGS: tuple[str, ...] = (
    "status:created",
    "status:shipped",
    "review:tricky",
    "status:approved",
    "status:canceled",
    "review:shared",
    "status:invoiced",
    "payment:not_defined",
    "status:unavailable",
    "review:double",
    "status:processing",
    "payment:vouchers",
)

# --------------------------------------------------------------------------------------------
# Small helpers.


def _derived_rng(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream per table."""
    digest = hashlib.sha256(f"olist:{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _scaled(real: int, scale: float, minimum: int) -> int:
    return max(minimum, round(real * scale))


def _cumulative(weights: tuple[float, ...] | list[float]) -> list[float]:
    total = 0.0
    result = []
    for weight in weights:
        total += weight
        result.append(total)
    return result


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _quote(text: str) -> str:
    """Always quote (ids and zip prefixes in customers, sellers and geolocation)."""
    return '"' + text.replace('"', '""') + '"'


def _quote_if_needed(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return _quote(text)
    return text


def _timestamp(moment: datetime | None) -> str:
    return "" if moment is None else str(moment)


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0)


def _money(cents: int, rng: random.Random) -> str:
    """Two decimals ("99.90"); about 2% written with one trailing zero less ("144.0")."""
    text = f"{cents // 100}.{cents % 100:02d}"
    if text.endswith("0") and rng.random() < 0.02:
        return text[:-1]
    return text


def _open(path: Path) -> TextIO:
    return open(path, "w", encoding="utf-8", newline="")


class _Counter:
    """Counts rows per file and reports progress every PROGRESS_EVERY rows."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.rows: dict[str, int] = {}

    def add(self, file_name: str, n: int = 1) -> None:
        before = self.rows.get(file_name, 0)
        after = before + n
        self.rows[file_name] = after
        if self.progress is not None and after // PROGRESS_EVERY > before // PROGRESS_EVERY:
            self.progress(file_name, after)

    def finish(self, file_name: str) -> None:
        self.rows.setdefault(file_name, 0)
        if self.progress is not None:
            self.progress(file_name, self.rows[file_name])


# --------------------------------------------------------------------------------------------
# Zip prefixes and geolocation.


class ZipArea(NamedTuple):
    prefix: str
    state: str
    city: str  # with accents, lowercase
    lat: float
    lng: float
    weight: float  # relative number of geolocation rows


def _build_zip_pool(rng: random.Random, size: int) -> list[ZipArea]:
    """Distinct zip prefixes, sorted; states weighted like the customers of the real data."""
    state_weights = _cumulative([state.weight for state in STATES])
    sao_paulo = STATES[0]
    areas: dict[str, ZipArea] = {}
    # The first real geolocation row; guarantees a prefix with a leading zero.
    areas["01037"] = ZipArea("01037", "SP", "são paulo", -23.5456, -46.6393, 2.0)
    while len(areas) < size:
        state = rng.choices(STATES, cum_weights=state_weights)[0]
        low, high = rng.choice(state.zip_ranges)
        number = rng.randint(low, high)
        prefix = f"{number:05d}"
        if prefix in areas:
            continue
        if state is sao_paulo and number < SAO_PAULO_CITY_PREFIX_END:
            city, spread = state.cities[0], 0.08
        elif rng.random() < 0.35:
            city, spread = state.cities[0], 0.1
        else:
            city, spread = rng.choice(state.cities[1:]), 1.5
        lat = state.lat + rng.uniform(-spread, spread)
        lng = state.lng + rng.uniform(-spread, spread)
        weight = min(rng.paretovariate(1.2), 40.0)
        areas[prefix] = ZipArea(prefix, state.code, city, lat, lng, weight)
    return [areas[prefix] for prefix in sorted(areas)]


def _geolocation_row(area: ZipArea, rng: random.Random) -> str:
    city = area.city
    if rng.random() < 0.6:
        city = _strip_accents(city)
    lat = area.lat + rng.uniform(-0.006, 0.006)
    lng = area.lng + rng.uniform(-0.006, 0.006)
    return f"{_quote(area.prefix)},{lat!r},{lng!r},{_quote_if_needed(city)},{area.state}\n"


def _write_geolocation(path: Path, pool: list[ZipArea], n_rows: int, rng: random.Random, counter: _Counter) -> None:
    """Several rows per prefix (at least one), about 26% exact duplicates of earlier rows."""
    total_weight = sum(area.weight for area in pool)
    extra_rows = n_rows - len(pool)
    cumulative_weight = 0.0
    extra_written = 0
    with _open(path) as out:
        out.write(",".join(_quote(name) for name in OLIST_FILES[GEOLOCATION]) + "\n")
        for area in pool:
            cumulative_weight += area.weight
            extra_target = int(extra_rows * cumulative_weight / total_weight + 0.5)
            rows_here = 1 + extra_target - extra_written
            extra_written = extra_target
            distinct_rows: list[str] = []
            for _ in range(rows_here):
                if distinct_rows and rng.random() < 0.26:
                    line = rng.choice(distinct_rows)
                else:
                    line = _geolocation_row(area, rng)
                    distinct_rows.append(line)
                out.write(line)
                counter.add(GEOLOCATION)
    counter.finish(GEOLOCATION)


# --------------------------------------------------------------------------------------------
# Sellers, products and the category translation.


class Sellers(NamedTuple):
    ids: list[str]
    states: list[str]


class Products(NamedTuple):
    ids: list[str]
    seller_index: list[int]
    price_cents: list[int]
    weight_g: list[int]


def _write_sellers(path: Path, n_sellers: int, pool: list[ZipArea], rng: random.Random, counter: _Counter) -> Sellers:
    """About 60% of sellers are in São Paulo state; cities lowercase, mostly unaccented."""
    sao_paulo_areas = [area for area in pool if area.state == "SP"]
    sellers = Sellers([], [])
    with _open(path) as out:
        out.write(",".join(_quote(name) for name in OLIST_FILES[SELLERS]) + "\n")
        for _ in range(n_sellers):
            if sao_paulo_areas and rng.random() < 0.35:
                area = rng.choice(sao_paulo_areas)
            else:
                area = rng.choice(pool)
            city = area.city if rng.random() < 0.05 else _strip_accents(area.city)
            seller_id = _hex_id(rng)
            out.write(f"{_quote(seller_id)},{_quote(area.prefix)},{_quote_if_needed(city)},{area.state}\n")
            sellers.ids.append(seller_id)
            sellers.states.append(area.state)
            counter.add(SELLERS)
    counter.finish(SELLERS)
    return sellers


def _product_price_cents(rng: random.Random) -> int:
    """Log-normal price (median about 74, mean about 120), with shop-like endings."""
    reais = min(max(rng.lognormvariate(4.3, 1.0), 0.85), 6735.0)
    ending = rng.choice((0.90, 0.90, 0.99, 0.00, 0.50, 0.89))
    if reais < 5:
        return max(85, round(reais * 100))
    return int(reais) * 100 + round(ending * 100)


def _product_row(rng: random.Random, category: str | None, has_size: bool) -> list[str]:
    """The product columns after product_id; empty strings for missing attributes."""
    if category is None:
        described = ["", "", "", ""]
    else:
        photos = rng.choices((1, 2, 3, 4, 5, 6, 7, 8, 10, 20), (50, 20, 12, 7, 4, 3, 2, 1, 0.5, 0.1))[0]
        described = [
            category,
            str(rng.randint(5, 76)),
            str(min(3992, max(4, int(rng.lognormvariate(6.4, 0.75))))),
            str(photos),
        ]
    if not has_size:
        return described + ["", "", "", ""]
    weight = 0 if rng.random() < 0.0001 else int(min(40425, max(2, rng.lognormvariate(6.6, 1.2))))
    size = [str(rng.randint(7, 105)), str(rng.randint(2, 105)), str(rng.randint(6, 118))]
    return described + [str(weight)] + size


def _write_products(path: Path, n_products: int, n_sellers: int, rng: random.Random, counter: _Counter) -> Products:
    """Product ids, category mix, and which seller sells each product.

    The last four products are forced: pc_gamer, the other untranslated category, one without
    category and one without weight/dimensions.  Every seller gets at least one product.
    """
    category_weights = _cumulative([weight for _, _, weight in CATEGORIES])
    forced_categories: dict[int, str | None] = {
        n_products - 1: UNTRANSLATED_CATEGORIES[0],
        n_products - 2: UNTRANSLATED_CATEGORIES[1],
        n_products - 3: None,
    }
    no_size_index = n_products - 4
    products = Products([], [], [], [])
    with _open(path) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(OLIST_FILES[PRODUCTS])
        for index in range(n_products):
            if index in forced_categories:
                category = forced_categories[index]
            elif rng.random() < 0.0185:
                category = None
            else:
                category = rng.choices(CATEGORIES, cum_weights=category_weights)[0][0]
            has_size = index != no_size_index and rng.random() > 0.0001
            product_id = _hex_id(rng)
            row = _product_row(rng, category, has_size)
            writer.writerow([product_id] + row)
            products.ids.append(product_id)
            if index < n_sellers:
                products.seller_index.append(index)
            else:
                products.seller_index.append(int(n_sellers * rng.random() ** 2))
            products.price_cents.append(_product_price_cents(rng))
            products.weight_g.append(int(row[4]) if row[4] else 1000)
            counter.add(PRODUCTS)
    counter.finish(PRODUCTS)
    return products


def _write_translation(path: Path, counter: _Counter) -> None:
    """UTF-8 BOM, CRLF line endings, no newline after the last line (as in the real file)."""
    lines = [",".join(OLIST_FILES[TRANSLATION])]
    for name, english, _ in CATEGORIES:
        if english is not None:
            lines.append(f"{name},{english}")
    with _open(path) as out:
        out.write("\ufeff" + "\r\n".join(lines))
    counter.add(TRANSLATION, len(lines) - 1)
    counter.finish(TRANSLATION)


# --------------------------------------------------------------------------------------------
# Orders, customers, items, payments and reviews: one streaming pass.


class Person(NamedTuple):
    unique_id: str
    area: ZipArea


class OrderDates(NamedTuple):
    purchase: datetime
    approved: datetime | None
    carrier: datetime | None
    delivered: datetime | None
    estimated: datetime


class Review(NamedTuple):
    review_id: str
    score: int
    title: str
    message: str
    created: datetime
    answered: datetime


class OrderGroup(NamedTuple):
    """Orders a person placed together: same purchase, same review (review_id shared)."""

    person: Person
    status: str
    dates: OrderDates
    review: Review


def _forced_plan(n_orders: int) -> dict[int, str]:
    """Order positions whose content is forced, spread evenly over the stream."""
    step = n_orders / len(FORCED_TAGS)
    return {int(step * (k + 0.5)): tag for k, tag in enumerate(FORCED_TAGS)}


class _OrderStream:
    """Writes customers, orders, items, payments and reviews for one order at a time."""

    PEOPLE_RING_SIZE = 2048
    REPEAT_PERSON = 0.025
    GROUP_START = 0.008

    def __init__(
        self,
        seed: int,
        pool: list[ZipArea],
        sellers: Sellers,
        products: Products,
        files: dict[str, TextIO],
        counter: _Counter,
    ) -> None:
        self.pool = pool
        self.sellers = sellers
        self.products = products
        self.counter = counter
        self.rng_orders = _derived_rng(seed, "orders")
        self.rng_customers = _derived_rng(seed, "customers")
        self.rng_items = _derived_rng(seed, "items")
        self.rng_payments = _derived_rng(seed, "payments")
        self.rng_reviews = _derived_rng(seed, "reviews")
        self.customers = files[CUSTOMERS]
        self.orders = csv.writer(files[ORDERS], lineterminator="\n")
        self.items = csv.writer(files[ITEMS], lineterminator="\n")
        self.payments = csv.writer(files[PAYMENTS], lineterminator="\n")
        self.reviews = csv.writer(files[REVIEWS], lineterminator="\n")
        self.people: list[Person] = []
        self.people_written = 0
        self.next_unsold_product = 0
        self.group: OrderGroup | None = None
        self.group_left = 0
        self.status_weights = _cumulative([weight for _, weight in ORDER_STATUSES])
        self.items_weights = _cumulative(ITEMS_PER_ORDER)
        self.payment_weights = _cumulative([weight for _, weight in SINGLE_PAYMENT_TYPES])
        self.installment_weights = _cumulative(CARD_INSTALLMENTS)

    def write_headers(self, files: dict[str, TextIO]) -> None:
        files[CUSTOMERS].write(",".join(_quote(name) for name in OLIST_FILES[CUSTOMERS]) + "\n")
        for name, writer in (
            (ORDERS, self.orders),
            (ITEMS, self.items),
            (PAYMENTS, self.payments),
            (REVIEWS, self.reviews),
        ):
            writer.writerow(OLIST_FILES[name])

    def run(self, n_orders: int) -> None:
        forced = _forced_plan(n_orders)
        for index in range(n_orders):
            if self.group is not None and self.group_left > 0:
                self._write_group_order(self.group)
                self.group_left -= 1
                continue
            tag = forced.get(index)
            group = self._write_order(tag)
            if group is not None and self._may_start_group(index, tag, forced):
                self.group = group
                self.group_left = 1 if tag or self.rng_orders.random() < 0.9 else 2

    def _may_start_group(self, index: int, tag: str | None, forced: dict[int, str]) -> bool:
        if tag == "review:shared":
            return True
        if tag is not None or self.rng_orders.random() >= self.GROUP_START:
            return False
        return all(index + k not in forced for k in (1, 2))

    # ---- one order ---------------------------------------------------------------------

    def _write_order(self, tag: str | None) -> OrderGroup | None:
        """A regular order; returns what a companion order would share, if anything."""
        person = self._person()
        customer_id = self._write_customer(person)
        status = self._status(tag)
        dates = self._order_dates(status)
        order_id = _hex_id(self.rng_orders)
        self._write_order_row(order_id, customer_id, status, dates)
        if self._has_items(status, tag):
            total = self._write_items(order_id, dates, person.area.state)
        else:
            total = _product_price_cents(self.rng_payments) + 1500
        self._write_payments(order_id, total, tag)
        review = self._write_reviews(order_id, status, dates, tag)
        if review is None or status != "delivered":
            return None
        return OrderGroup(person, status, dates, review)

    def _write_group_order(self, group: OrderGroup) -> None:
        """Another order of the same person at the same moment, covered by the same review."""
        customer_id = self._write_customer(group.person)
        order_id = _hex_id(self.rng_orders)
        self._write_order_row(order_id, customer_id, group.status, group.dates)
        total = self._write_items(order_id, group.dates, group.person.area.state)
        self._write_payments(order_id, total, None)
        self._write_review_row(group.review, order_id)

    # ---- customers ---------------------------------------------------------------------

    def _person(self) -> Person:
        """A new person, or (about 2.5%) a recent one buying again with a new customer_id."""
        rng = self.rng_customers
        if self.people and rng.random() < self.REPEAT_PERSON:
            return rng.choice(self.people)
        person = Person(_hex_id(rng), rng.choice(self.pool))
        if len(self.people) < self.PEOPLE_RING_SIZE:
            self.people.append(person)
        else:
            self.people[self.people_written % self.PEOPLE_RING_SIZE] = person
        self.people_written += 1
        return person

    def _write_customer(self, person: Person) -> str:
        customer_id = _hex_id(self.rng_customers)
        area = person.area
        city = _quote_if_needed(_strip_accents(area.city))
        self.customers.write(
            f"{_quote(customer_id)},{_quote(person.unique_id)},{_quote(area.prefix)},{city},{area.state}\n"
        )
        self.counter.add(CUSTOMERS)
        return customer_id

    # ---- orders ------------------------------------------------------------------------

    def _status(self, tag: str | None) -> str:
        if tag is not None and tag.startswith("status:"):
            return tag.split(":", 1)[1]
        if tag == "payment:not_defined":
            return "canceled"
        if tag is not None:
            return "delivered"
        return self.rng_orders.choices(ORDER_STATUSES, cum_weights=self.status_weights)[0][0]

    def _purchase_moment(self, status: str) -> datetime:
        """Few orders in 2016, growing volume in 2017-2018; only unfinished ones after Sept 2018."""
        rng = self.rng_orders
        if status in ("created", "approved", "canceled") and rng.random() < 0.3:
            start, end = BULK_END, LAST_PURCHASE
            fraction = rng.random()
        elif rng.random() < 0.0035:
            start, end = FIRST_PURCHASE, datetime(2016, 12, 23, 23, 16, 47)
            fraction = rng.random()
        else:
            start, end = BULK_START, BULK_END
            fraction = rng.random() ** 0.7
        seconds = int((end - start).total_seconds() * fraction)
        return start + timedelta(seconds=seconds)

    def _order_dates(self, status: str) -> OrderDates:
        """Dates that have happened given the status; the rest stay None (empty fields)."""
        rng = self.rng_orders
        purchase = self._purchase_moment(status)
        estimated = _midnight(purchase) + timedelta(days=rng.randint(14, 40))
        approved = purchase + timedelta(seconds=rng.randint(60, 2 * 86_400))
        carrier = approved + timedelta(seconds=rng.randint(3_600, 6 * 86_400))
        delivered = carrier + timedelta(seconds=int(max(0.5, rng.gauss(8.0, 6.0)) * 86_400))
        if status == "created":
            return OrderDates(purchase, None, None, None, estimated)
        if status in ("approved", "invoiced", "processing", "unavailable"):
            return OrderDates(purchase, approved, None, None, estimated)
        if status == "shipped":
            return OrderDates(purchase, approved, carrier, None, estimated)
        if status == "canceled":
            has_approved = rng.random() < 0.85
            has_carrier = has_approved and rng.random() < 0.12
            has_delivered = has_carrier and rng.random() < 0.08
            return OrderDates(
                purchase,
                approved if has_approved else None,
                carrier if has_carrier else None,
                delivered if has_delivered else None,
                estimated,
            )
        # delivered: all dates, with a handful missing as in the real data
        return OrderDates(
            purchase,
            None if rng.random() < 0.00015 else approved,
            None if rng.random() < 0.00002 else carrier,
            None if rng.random() < 0.00008 else delivered,
            estimated,
        )

    def _write_order_row(self, order_id: str, customer_id: str, status: str, dates: OrderDates) -> None:
        self.orders.writerow(
            [
                order_id,
                customer_id,
                status,
                _timestamp(dates.purchase),
                _timestamp(dates.approved),
                _timestamp(dates.carrier),
                _timestamp(dates.delivered),
                _timestamp(dates.estimated),
            ]
        )
        self.counter.add(ORDERS)

    # ---- items -------------------------------------------------------------------------

    def _has_items(self, status: str, tag: str | None) -> bool:
        """About 0.78% of orders have no items: almost all unavailable, a quarter of canceled."""
        rng = self.rng_items
        if tag == "status:unavailable" or tag == "status:created":
            return False
        if status == "unavailable":
            return rng.random() >= 0.99
        if status == "canceled":
            return rng.random() >= 0.26
        if status == "created":
            return rng.random() >= 0.6
        return True

    def _pick_product(self) -> int:
        """Sweep through unsold products first (so nearly all get sold), else a popular one."""
        rng = self.rng_items
        n_products = len(self.products.ids)
        if self.next_unsold_product < n_products and rng.random() < 0.35:
            self.next_unsold_product += 1
            return self.next_unsold_product - 1
        return int(n_products * rng.random() ** 2)

    def _freight_cents(self, product: int, seller_state: str, customer_state: str) -> int:
        rng = self.rng_items
        if rng.random() < 0.003:
            return 0
        kilos = self.products.weight_g[product] / 1000
        reais = 7.0 + 1.6 * kilos + rng.gauss(0.0, 2.5)
        if seller_state != customer_state:
            reais *= 1.45
        return max(100, round(reais * 100))

    def _write_items(self, order_id: str, dates: OrderDates, customer_state: str) -> int:
        """order_item_id 1..n (one item most common); returns price + freight in cents."""
        rng = self.rng_items
        n_items = rng.choices(range(len(ITEMS_PER_ORDER)), cum_weights=self.items_weights)[0]
        shipping_limit = (dates.approved or dates.purchase) + timedelta(days=6, seconds=rng.randint(0, 86_399))
        shipping_text = _timestamp(shipping_limit)
        total = 0
        product = self._pick_product()
        for item_number in range(1, n_items + 1):
            if item_number > 1 and rng.random() >= 0.55:
                product = self._pick_product()
            seller = self.products.seller_index[product]
            price = self.products.price_cents[product]
            if rng.random() < 0.15:
                price = max(85, round(price * rng.uniform(0.85, 1.15)))
            freight = self._freight_cents(product, self.sellers.states[seller], customer_state)
            self.items.writerow(
                [
                    order_id,
                    item_number,
                    self.products.ids[product],
                    self.sellers.ids[seller],
                    shipping_text,
                    _money(price, rng),
                    _money(freight, rng),
                ]
            )
            self.counter.add(ITEMS)
            total += price + freight
        return total

    # ---- payments ----------------------------------------------------------------------

    def _installments(self, payment_type: str) -> int:
        if payment_type != "credit_card":
            return 1
        rng = self.rng_payments
        return rng.choices(range(len(CARD_INSTALLMENTS)), cum_weights=self.installment_weights)[0]

    def _payment_plan(self, total: int, tag: str | None) -> list[tuple[str, int]]:
        """(payment_type, cents) per payment; values add up to the order total."""
        rng = self.rng_payments
        if tag == "payment:not_defined":
            return [("not_defined", 0)]
        if tag == "payment:vouchers":
            first = total // 3
            return [("credit_card", total - first), ("voucher", first), ("voucher", 0)]
        if rng.random() >= 0.0285:
            payment_type = rng.choices(SINGLE_PAYMENT_TYPES, cum_weights=self.payment_weights)[0][0]
            return [(payment_type, 0 if payment_type == "not_defined" else total)]
        # several payments: vouchers for part of the total, the rest mostly by credit card
        n_vouchers = rng.choices((1, 2, 3, 4, 6, 10), (70, 15, 7, 4, 3, 1))[0]
        plan: list[tuple[str, int]] = []
        remaining = total
        for _ in range(n_vouchers):
            value = 0 if rng.random() < 0.001 else round(remaining * rng.uniform(0.05, 0.5))
            plan.append(("voucher", value))
            remaining -= value
        last_type = "credit_card" if rng.random() < 0.8 else "voucher"
        return [(last_type, remaining)] + plan

    def _write_payments(self, order_id: str, total: int, tag: str | None) -> None:
        rng = self.rng_payments
        for sequential, (payment_type, cents) in enumerate(self._payment_plan(total, tag), 1):
            self.payments.writerow(
                [
                    order_id,
                    sequential,
                    payment_type,
                    self._installments(payment_type),
                    _money(cents, rng),
                ]
            )
            self.counter.add(PAYMENTS)

    # ---- reviews -----------------------------------------------------------------------

    def _message(self, score: int) -> str:
        rng = self.rng_reviews
        if rng.random() >= MESSAGE_PROBABILITY[score]:
            return ""
        pool = HAPPY_SENTENCES if score >= 4 else NEUTRAL_SENTENCES if score == 3 else UNHAPPY_SENTENCES
        message = rng.choice(pool)
        if rng.random() < 0.3:
            message += rng.choice(SENTENCE_SEPARATORS) + rng.choice(pool)
        return message

    def _new_review(self, status: str, dates: OrderDates, not_before: datetime | None) -> Review:
        rng = self.rng_reviews
        late = dates.delivered is None or dates.delivered > dates.estimated + timedelta(days=1)
        weights = REVIEW_SCORES_UNHAPPY if late else REVIEW_SCORES_HAPPY
        score = rng.choices(range(6), weights)[0]
        title = rng.choice(REVIEW_TITLES) if rng.random() < TITLE_PROBABILITY else ""
        if not_before is not None:
            created = _midnight(not_before) + timedelta(days=rng.randint(1, 20))
        elif dates.delivered is not None:
            created = _midnight(dates.delivered) + timedelta(days=rng.choice((1, 1, 1, 0, 2, 3)))
        else:
            created = dates.estimated + timedelta(days=rng.randint(0, 3))
        if rng.random() < 0.9:
            answer_seconds = rng.randint(4 * 3_600, 3 * 86_400)
        else:
            answer_seconds = rng.randint(3 * 86_400, 30 * 86_400)
        answered = created + timedelta(seconds=answer_seconds)
        return Review(_hex_id(rng), score, title, self._message(score), created, answered)

    def _write_review_row(self, review: Review, order_id: str) -> None:
        self.reviews.writerow(
            [
                review.review_id,
                order_id,
                review.score,
                review.title,
                review.message,
                _timestamp(review.created),
                _timestamp(review.answered),
            ]
        )
        self.counter.add(REVIEWS)

    def _write_reviews(self, order_id: str, status: str, dates: OrderDates, tag: str | None) -> Review | None:
        """Usually one review; about 0.8% none, about 0.5% a second one later."""
        rng = self.rng_reviews
        if tag is None and rng.random() < 0.0077:
            return None
        review = self._new_review(status, dates, None)
        if tag == "review:tricky":
            review = review._replace(score=5, message=TRICKY_MESSAGE)
        self._write_review_row(review, order_id)
        if tag == "review:double" or (tag is None and rng.random() < 0.0055):
            self._write_review_row(self._new_review(status, dates, review.created), order_id)
        return review


# --------------------------------------------------------------------------------------------
# Public entry point.


def _geolocation_job(path: Path, seed: int, n_zips: int, n_rows: int) -> int:
    """Write the geolocation file in a worker process; return its data rows (no progress calls)."""
    counter = _Counter(None)
    pool = _build_zip_pool(_derived_rng(seed, "zips"), n_zips)
    _write_geolocation(path, pool, n_rows, _derived_rng(seed, "geolocation"), counter)
    return counter.rows[GEOLOCATION]


def generate_olist(
    out_dir: str | os.PathLike,
    scale: float = 1.0,
    seed: int = 42,
    progress: Callable[[str, int], None] | None = None,
    parallel: bool = False,
) -> dict[str, int]:
    """Write the nine Olist CSV files into out_dir; return {file name: data rows written}.

    ``scale`` multiplies the row counts of the real dataset (products, sellers and
    geolocation too, with a few rows minimum; the 71 category translations are fixed).
    ``progress(file_name, rows_so_far)`` is called every 100,000 rows of a file and once when
    the file is finished.  Same ``(scale, seed)`` gives byte-identical files.

    ``parallel=True`` writes the geolocation file (its own random stream, about half of the
    time at any scale) in a second process beside the others: the same bytes in about half
    the wall time on two cores; geolocation then gets only its final progress call.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counter = _Counter(progress)

    n_zips = min(MAX_ZIP_PREFIXES, _scaled(REAL_ZIP_PREFIXES, scale, MIN_ZIP_PREFIXES))
    n_geolocation = max(n_zips, round(REAL_GEOLOCATION_ROWS * scale))
    n_sellers = _scaled(REAL_SELLERS, scale, MIN_SELLERS)
    n_products = _scaled(REAL_PRODUCTS, scale, MIN_PRODUCTS)
    n_orders = _scaled(REAL_ORDERS, scale, MIN_ORDERS)

    pool = _build_zip_pool(_derived_rng(seed, "zips"), n_zips)
    geolocation_job = None
    if parallel:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(max_workers=1)
        geolocation_job = executor.submit(_geolocation_job, out / GEOLOCATION, seed, n_zips, n_geolocation)
        executor.shutdown(wait=False)
    else:
        _write_geolocation(out / GEOLOCATION, pool, n_geolocation, _derived_rng(seed, "geolocation"), counter)
    sellers = _write_sellers(out / SELLERS, n_sellers, pool, _derived_rng(seed, "sellers"), counter)
    products = _write_products(out / PRODUCTS, n_products, n_sellers, _derived_rng(seed, "products"), counter)
    _write_translation(out / TRANSLATION, counter)

    names = (CUSTOMERS, ORDERS, ITEMS, PAYMENTS, REVIEWS)
    files = {name: _open(out / name) for name in names}
    try:
        stream = _OrderStream(seed, pool, sellers, products, files, counter)
        stream.write_headers(files)
        stream.run(n_orders)
    finally:
        for handle in files.values():
            handle.close()
    for name in names:
        counter.finish(name)
    if geolocation_job is not None:
        counter.rows[GEOLOCATION] = geolocation_job.result()
        counter.finish(GEOLOCATION)

    return {name: counter.rows[name] for name in OLIST_FILES}
