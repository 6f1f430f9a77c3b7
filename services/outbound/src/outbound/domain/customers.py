"""What Pennylane needs to hold a customer, and the name parts an individual is written with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CustomerKind = Literal["company", "individual"]


@dataclass(frozen=True, slots=True)
class BillingAddress:
    address: str
    postal_code: str
    city: str
    country_alpha2: str


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    kind: CustomerKind
    name: str
    first_name: str | None
    last_name: str | None
    emails: tuple[str, ...]
    billing_address: BillingAddress | None


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def creation_problems(customer: CustomerFacts) -> list[str]:
    """Why Pennylane would refuse to create this customer; empty when it can be created.

    A company needs a name and a billing address; an individual a first name, a last name and a
    billing address; an address needs all four parts (NOTES §10).
    """
    problems: list[str] = []
    if customer.kind == "company":
        if _blank(customer.name):
            problems.append("a company customer needs a name")
    else:
        first, last = individual_name_parts(customer)
        if _blank(first):
            problems.append("an individual customer needs a first name")
        if _blank(last):
            problems.append("an individual customer needs a last name")
    address = customer.billing_address
    if address is None:
        problems.append("Pennylane requires a billing address")
    else:
        missing = [
            part
            for part, value in (
                ("street address", address.address),
                ("postal code", address.postal_code),
                ("city", address.city),
                ("country", address.country_alpha2),
            )
            if _blank(value)
        ]
        if missing:
            problems.append(f"the billing address lacks: {', '.join(missing)}")
        elif len(address.country_alpha2.strip()) != 2 or not address.country_alpha2.isalpha():
            problems.append(f"{address.country_alpha2!r} is not a two-letter country code")
    return problems


def renamed_individual(name: str, first_name: str, last_name: str) -> tuple[str, str]:
    """The first and last name of an individual Pennylane calls `first last`, now named `name`.

    Stockpit keeps one name. The unchanged name keeps Pennylane's parts as they are ("Jean Pierre"
    / "Martin" stays so, whatever the spaces); a new name keeps whichever part it still starts or
    ends with, and only a wholly new name is split at its first space. A single word becomes the
    last name, beside the first name Pennylane has.
    """
    name = " ".join(name.split())
    first, last = first_name.strip(), last_name.strip()
    if name == " ".join(f"{first} {last}".split()):
        return first_name, last_name
    if first and name.startswith(first + " "):
        return first_name, name.removeprefix(first + " ")
    if last and name.endswith(" " + last):
        return name.removesuffix(" " + last), last_name
    parts = name.split(maxsplit=1)
    if len(parts) == 2:
        return parts[0], parts[1]
    return first_name, name


def individual_name_parts(customer: CustomerFacts) -> tuple[str | None, str | None]:
    """First and last name as given, else split from the full name at its first space."""
    if not _blank(customer.first_name) or not _blank(customer.last_name):
        return customer.first_name, customer.last_name
    parts = customer.name.split(maxsplit=1)
    if len(parts) == 2:
        return parts[0], parts[1]
    return None, customer.name.strip() or None
