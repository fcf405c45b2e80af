from uuid import uuid4

from services.inventory.domain import (
    Reservation,
    ReservationState,
    Shortage,
    Stock,
    merged_lines,
    release,
    reserve,
    ship,
)


def ready(lines) -> Reservation:
    return Reservation(uuid4(), merged_lines(lines), paid=True)


def test_an_order_is_ready_only_with_both_its_lines_and_its_payment():
    order = uuid4()
    assert not Reservation(order).ready
    assert not Reservation(order, lines=(("A", 1),)).ready
    assert not Reservation(order, paid=True).ready
    assert Reservation(order, lines=(("A", 1),), paid=True).ready


def test_lines_of_one_sku_are_merged_and_sorted():
    assert merged_lines([("B", 1), ("A", 2), ("B", 3)]) == (("A", 2), ("B", 4))


def test_every_line_is_reserved_together():
    stock = {"A": Stock("A", 5, 0), "B": Stock("B", 2, 1)}
    reservation, changed = reserve(ready([("A", 2), ("B", 2)]), stock)
    assert reservation.state is ReservationState.RESERVED
    assert changed == {"A": Stock("A", 3, 2), "B": Stock("B", 0, 3)}


def test_all_or_nothing_when_one_line_is_short_or_unknown():
    stock = {"A": Stock("A", 5, 0), "B": Stock("B", 1, 0)}
    reservation, shortage = reserve(ready([("A", 2), ("B", 2)]), stock)
    assert reservation.state is ReservationState.FAILED and reservation.failed_sku == "B"
    assert shortage == Shortage("B", "insufficient stock of B: 1 < 2")
    _, unknown = reserve(ready([("A", 1), ("Z", 1)]), stock)
    assert unknown == Shortage("Z", "unknown SKU Z")


def test_release_returns_exactly_what_was_reserved_and_shipping_takes_it_out():
    stock = {"A": Stock("A", 5, 0)}
    reservation, changed = reserve(ready([("A", 3)]), stock)
    released, back = release(reservation, changed, "shipment failed")
    assert back == stock and released.state is ReservationState.RELEASED
    shipped, out = ship(reservation, changed)
    assert out == {"A": Stock("A", 2, 0, 3)} and shipped.state is ReservationState.SHIPPED
    # available + reserved = stocked - shipped, in every state
    for s in (stock["A"], changed["A"], back["A"], out["A"]):
        assert s.available + s.reserved == 5 - s.shipped
