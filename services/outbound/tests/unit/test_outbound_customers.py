from outbound.domain.customers import (
    BillingAddress,
    CustomerFacts,
    creation_problems,
    individual_name_parts,
)

PARIS = BillingAddress("8 rue de la paix", "75002", "Paris", "FR")


def facts(**overrides: object) -> CustomerFacts:
    values: dict[str, object] = {
        "kind": "company",
        "name": "Acme",
        "first_name": None,
        "last_name": None,
        "emails": (),
        "billing_address": PARIS,
    }
    values.update(overrides)
    return CustomerFacts(**values)  # type: ignore[arg-type]


def test_a_company_with_name_and_full_address_can_be_created() -> None:
    assert creation_problems(facts()) == []


def test_missing_address_is_reported() -> None:
    assert creation_problems(facts(billing_address=None)) == [
        "Pennylane requires a billing address"
    ]


def test_blank_address_parts_are_named() -> None:
    problems = creation_problems(facts(billing_address=BillingAddress(" ", "75002", "", "FR")))
    assert problems == ["the billing address lacks: street address, city"]


def test_country_must_be_two_letters() -> None:
    problems = creation_problems(facts(billing_address=BillingAddress("a", "1", "c", "F1")))
    assert problems == ["'F1' is not a two-letter country code"]


def test_a_company_needs_a_name() -> None:
    assert creation_problems(facts(name="  ")) == ["a company customer needs a name"]


def test_an_individual_needs_first_and_last_name() -> None:
    assert creation_problems(facts(kind="individual", name="Cher")) == [
        "an individual customer needs a first name"
    ]
    assert creation_problems(facts(kind="individual", name="Jean Dupont")) == []


def test_individual_name_parts_prefer_the_given_parts() -> None:
    assert individual_name_parts(facts(name="Jean Dupont")) == ("Jean", "Dupont")
    assert individual_name_parts(facts(name="Jean de la Tour")) == ("Jean", "de la Tour")
    assert individual_name_parts(facts(name="X", first_name="Anne", last_name="Lee")) == (
        "Anne",
        "Lee",
    )
