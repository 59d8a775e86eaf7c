//! Pricing one customer's usage under a plan: exact decimals, each charge
//! rounded half-up to cents, the total their sum.
//!
//! [`price`] prices the plan's shorthand fields (requests and bandwidth, the
//! invoice's `request_charge` and `bandwidth_charge`); [`charge`] prices one
//! charge of a `charges` table from its meter's quantity. Both share the
//! arithmetic of tiers, so a shorthand plan and the same prices written as a
//! charge give the same amounts.

use super::plans::{Charge, Plan, RequestPricing, Tier, TierMode, UnitPricing};
use rust_decimal::{Decimal, RoundingStrategy};

/// The charges of one invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Charges {
    pub(crate) overage_requests: u64,
    pub(crate) base_fee: Decimal,
    pub(crate) request_charge: Decimal,
    pub(crate) bandwidth_charge: Decimal,
    pub(crate) total: Decimal,
}

/// Bytes in a (decimal) gigabyte.
const GB: u64 = 1_000_000_000;

fn cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn per_1k(units: Decimal, price: Decimal) -> Decimal {
    units * price / Decimal::from(1000)
}

/// Tiers over `overage` units (not rounded). Tier bounds count units of
/// overage, as the shorthand `tiers` always have.
fn tiered(mode: TierMode, tiers: &[Tier], overage: Decimal) -> Decimal {
    let ceiling = |t: &Tier| t.up_to.map(Decimal::from);
    match mode {
        TierMode::Graduated => {
            let mut charge = Decimal::ZERO;
            let mut floor = Decimal::ZERO;
            for tier in tiers {
                let top = ceiling(tier).map_or(overage, |c| c.min(overage));
                charge += per_1k((top - floor).max(Decimal::ZERO), tier.price_per_1k);
                match ceiling(tier) {
                    Some(c) if overage > c => floor = c,
                    _ => break,
                }
            }
            charge
        }
        TierMode::Volume => tiers
            .iter()
            .find(|t| ceiling(t).is_none_or(|c| overage <= c))
            .map_or(Decimal::ZERO, |t| per_1k(overage, t.price_per_1k)),
    }
}

/// Prices `billable` requests and `bytes_out` under `plan`'s shorthand fields.
pub(crate) fn price(plan: &Plan, billable: u64, bytes_out: u64) -> Charges {
    let overage = billable.saturating_sub(plan.included_requests);
    let request_charge = match &plan.requests {
        RequestPricing::None => Decimal::ZERO,
        RequestPricing::Flat { price_per_1k } => per_1k(Decimal::from(overage), *price_per_1k),
        RequestPricing::Tiered { mode, tiers } => tiered(*mode, tiers, Decimal::from(overage)),
    };
    let bandwidth = Decimal::from(bytes_out) * plan.price_per_gb_out / Decimal::from(GB);
    let (base_fee, request_charge, bandwidth_charge) = (
        cents(plan.base_fee),
        cents(request_charge),
        cents(bandwidth),
    );
    Charges {
        overage_requests: overage,
        base_fee,
        request_charge,
        bandwidth_charge,
        total: base_fee + request_charge + bandwidth_charge,
    }
}

/// Prices `quantity` units of a charge's meter, rounded half-up to cents:
/// the `included` units are free, the rest priced per unit, in packages
/// (the last one rounded up, as Lago's package charge and Stripe's
/// `transform_quantity` do) or by tiers. A quantity of no rows (`max`, `min`
/// or `avg` of nothing) costs nothing.
pub(crate) fn charge(charge: &Charge, quantity: Option<Decimal>) -> Decimal {
    let overage = quantity.map_or(Decimal::ZERO, |q| {
        (q - Decimal::from(charge.included)).max(Decimal::ZERO)
    });
    cents(match &charge.pricing {
        UnitPricing::None => Decimal::ZERO,
        UnitPricing::PerUnit(price) => overage * price,
        UnitPricing::Package { size, price } => (overage / Decimal::from(*size)).ceil() * price,
        UnitPricing::Tiered { mode, tiers } => tiered(*mode, tiers, overage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::plans::Tier;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tiered(mode: TierMode) -> Plan {
        Plan {
            name: "pro".into(),
            base_fee: d("99.00"),
            included_requests: 100_000,
            requests: RequestPricing::Tiered {
                mode,
                tiers: vec![
                    Tier {
                        up_to: Some(1_000_000),
                        price_per_1k: d("0.35"),
                    },
                    Tier {
                        up_to: None,
                        price_per_1k: d("0.20"),
                    },
                ],
            },
            price_per_gb_out: d("0.09"),
            monthly_quota: None,
            daily_quota: None,
            charges: Default::default(),
        }
    }

    #[test]
    fn zero_usage_and_only_included_units_cost_the_base_fee() {
        for billable in [0, 1, 100_000] {
            let c = price(&tiered(TierMode::Graduated), billable, 0);
            assert_eq!(c.overage_requests, 0);
            assert_eq!(
                (c.request_charge, c.bandwidth_charge, c.total),
                (d("0"), d("0"), d("99.00"))
            );
        }
    }

    #[test]
    fn exactly_at_a_tier_boundary() {
        // 1,100,000 billable = 1,000,000 overage: all of it in tier 1.
        let c = price(&tiered(TierMode::Graduated), 1_100_000, 0);
        assert_eq!(c.overage_requests, 1_000_000);
        assert_eq!(c.request_charge, d("350.00")); // 1000 × 0.35
        // One more unit crosses into tier 2: 0.20 / 1000 = 0.0002 → rounds to 350.00.
        let c = price(&tiered(TierMode::Graduated), 1_100_001, 0);
        assert_eq!(c.request_charge, d("350.00"));
        // 1,000,000 + 3 units: 350 + 0.0006 → 350.00; 1,000,000 + 25 units: 350.005 → 350.01 (half up).
        assert_eq!(
            price(&tiered(TierMode::Graduated), 1_100_025, 0).request_charge,
            d("350.01")
        );
    }

    #[test]
    fn graduated_and_volume_differ_past_the_first_tier() {
        // Overage 1,500,000: graduated 1000 × 0.35 + 500 × 0.20 = 450.00;
        // volume: all 1500 × 0.20 = 300.00.
        let g = price(&tiered(TierMode::Graduated), 1_600_000, 0);
        let v = price(&tiered(TierMode::Volume), 1_600_000, 0);
        assert_eq!(g.request_charge, d("450.00"));
        assert_eq!(v.request_charge, d("300.00"));
        // Inside the first tier they agree: overage 400,000 × 0.35/1k = 140.00.
        assert_eq!(
            price(&tiered(TierMode::Volume), 500_000, 0).request_charge,
            d("140.00")
        );
        assert_eq!(
            price(&tiered(TierMode::Graduated), 500_000, 0).request_charge,
            d("140.00")
        );
    }

    #[test]
    fn bandwidth_and_rounding_half_up_per_charge() {
        // 12.5 GB × 0.09 = 1.125 → 1.13 (half up, not banker's 1.12).
        let c = price(&tiered(TierMode::Graduated), 0, 12_500_000_000);
        assert_eq!(c.bandwidth_charge, d("1.13"));
        assert_eq!(c.total, d("100.13"));
    }

    #[test]
    fn flat_rate() {
        let plan = Plan {
            name: "starter".into(),
            base_fee: d("19.00"),
            included_requests: 100,
            requests: RequestPricing::Flat {
                price_per_1k: d("1.25"),
            },
            price_per_gb_out: d("0"),
            monthly_quota: None,
            daily_quota: None,
            charges: Default::default(),
        };
        // 2,100 billable → 2,000 overage × 1.25/1k = 2.50.
        let c = price(&plan, 2_100, 0);
        assert_eq!(
            (c.overage_requests, c.request_charge, c.total),
            (2_000, d("2.50"), d("21.50"))
        );
    }

    fn charged(included: u64, pricing: UnitPricing) -> Charge {
        Charge {
            meter: "search_calls".into(),
            included,
            pricing,
            daily_limit: None,
            monthly_limit: None,
            shorthand: false,
        }
    }

    fn units(n: u64) -> Option<Decimal> {
        Some(Decimal::from(n))
    }

    #[test]
    fn packages_round_up_past_an_exact_multiple() {
        let c = charged(
            500,
            UnitPricing::Package {
                size: 1000,
                price: d("2.00"),
            },
        );
        // Inside the included 500: nothing.
        assert_eq!(charge(&c, units(500)), d("0"));
        // 501 − 500 = 1 unit: one package, 2.00.
        assert_eq!(charge(&c, units(501)), d("2.00"));
        // 1500 − 500 = 1000 units: exactly one package, 2.00.
        assert_eq!(charge(&c, units(1500)), d("2.00"));
        // 1501 − 500 = 1001 units: ceil(1001 / 1000) = 2 packages, 4.00.
        assert_eq!(charge(&c, units(1501)), d("4.00"));
        // 3500 − 500 = 3000: 3 packages, 6.00; one more: 4 packages, 8.00.
        assert_eq!(charge(&c, units(3500)), d("6.00"));
        assert_eq!(charge(&c, units(3501)), d("8.00"));
        // A fraction of a unit (an avg meter) still opens a package: 0.5 → 1.
        assert_eq!(charge(&c, Some(d("500.5"))), d("2.00"));
        // No rows at all (max/min/avg of nothing) costs nothing.
        assert_eq!(charge(&c, None), d("0"));
    }

    /// 100 units at 0.05, up to 1000 at 0.02, beyond at 0.01 (per unit, so
    /// per 1k: 50, 20, 10), after 10 included units.
    fn three_tiers(mode: TierMode) -> Charge {
        let tier = |up_to, per_1k: &str| Tier {
            up_to,
            price_per_1k: d(per_1k),
        };
        charged(
            10,
            UnitPricing::Tiered {
                mode,
                tiers: vec![
                    tier(Some(100), "50"),
                    tier(Some(1000), "20"),
                    tier(None, "10"),
                ],
            },
        )
    }

    #[test]
    fn graduated_and_volume_tiers_of_a_meter() {
        let (g, v) = (
            three_tiers(TierMode::Graduated),
            three_tiers(TierMode::Volume),
        );
        // 1510 − 10 = 1500 units. Graduated: 100 × 0.05 + 900 × 0.02 + 500 × 0.01
        // = 5.00 + 18.00 + 5.00 = 28.00. Volume: all 1500 × 0.01 = 15.00.
        assert_eq!(charge(&g, units(1510)), d("28.00"));
        assert_eq!(charge(&v, units(1510)), d("15.00"));
        // 110 − 10 = 100 units, the top of tier 1: both 100 × 0.05 = 5.00.
        assert_eq!(charge(&g, units(110)), d("5.00"));
        assert_eq!(charge(&v, units(110)), d("5.00"));
        // 111 − 10 = 101 units. Graduated: 5.00 + 1 × 0.02 = 5.02.
        // Volume: 101 × 0.02 = 2.02.
        assert_eq!(charge(&g, units(111)), d("5.02"));
        assert_eq!(charge(&v, units(111)), d("2.02"));
        // 1010 − 10 = 1000, the top of tier 2. Graduated: 5.00 + 900 × 0.02 = 23.00.
        // Volume: 1000 × 0.02 = 20.00.
        assert_eq!(charge(&g, units(1010)), d("23.00"));
        assert_eq!(charge(&v, units(1010)), d("20.00"));
        // Included units only: nothing.
        assert_eq!(charge(&g, units(10)), d("0"));
        assert_eq!(charge(&v, units(3)), d("0"));
    }

    #[test]
    fn per_unit_prices_of_many_digits_round_half_up_once() {
        // 1000 × 0.0000345 = 0.0345 → 0.03.
        let c = charged(0, UnitPricing::PerUnit(d("0.0000345")));
        assert_eq!(charge(&c, units(1000)), d("0.03"));
        // 1000 × 0.000025 = 0.025 → 0.03 half up (banker's rounding gives 0.02).
        let c = charged(0, UnitPricing::PerUnit(d("0.000025")));
        assert_eq!(charge(&c, units(1000)), d("0.03"));
        // 250 included: (1250 − 250) × 0.000025 = 0.025 → 0.03 again.
        let c = charged(250, UnitPricing::PerUnit(d("0.000025")));
        assert_eq!(charge(&c, units(1250)), d("0.03"));
        // 123,456,789 bytes × 0.00000000009 = 0.01111111101 → 0.01.
        let c = charged(0, UnitPricing::PerUnit(d("0.00000000009")));
        assert_eq!(charge(&c, units(123_456_789)), d("0.01"));
        // An unpriced charge (a limit only) costs nothing.
        assert_eq!(
            charge(&charged(0, UnitPricing::None), units(1_000_000)),
            d("0")
        );
    }

    #[test]
    fn shorthand_charges_price_as_the_shorthand_fields() {
        let plans = crate::billing::plans::Plans::parse(
            r#"
            [billing]
            currency = "USD"
            [plans.tiered]
            included_requests = 100000
            tier_mode = "graduated"
            tiers = [{ up_to = 1000000, price_per_1k = "0.35" }, { up_to = "inf", price_per_1k = "0.20" }]
            price_per_gb_out = "0.09"
            [plans.flat]
            included_requests = 100
            price_per_1k_requests = "1.25"
            "#,
            &crate::key::KeyHasher::new(None),
        )
        .unwrap();
        for plan in plans.plans.values() {
            for (billable, bytes_out) in [
                (0, 0),
                (2_100, 12_500_000_000),
                (1_100_025, 1),
                (1_600_000, 999_999_999_999),
            ] {
                let want = price(plan, billable, bytes_out);
                let requests = &plan.charges["billable_requests"];
                assert_eq!(charge(requests, units(billable)), want.request_charge);
                let bandwidth = plan.charges.get("bytes_out");
                assert_eq!(
                    bandwidth.map_or(d("0"), |c| charge(c, units(bytes_out))),
                    want.bandwidth_charge
                );
            }
        }
    }
}
