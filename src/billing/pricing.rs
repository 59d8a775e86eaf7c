//! Pricing one customer's usage under a plan: exact decimals, each charge
//! rounded half-up to cents, the total their sum.

use super::plans::{Plan, RequestPricing, TierMode};
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

fn per_1k(units: u64, price: Decimal) -> Decimal {
    Decimal::from(units) * price / Decimal::from(1000)
}

/// Prices `billable` requests and `bytes_out` under `plan`.
pub(crate) fn price(plan: &Plan, billable: u64, bytes_out: u64) -> Charges {
    let overage = billable.saturating_sub(plan.included_requests);
    let request_charge = match &plan.requests {
        RequestPricing::None => Decimal::ZERO,
        RequestPricing::Flat { price_per_1k } => per_1k(overage, *price_per_1k),
        RequestPricing::Tiered {
            mode: TierMode::Graduated,
            tiers,
        } => {
            let mut charge = Decimal::ZERO;
            let mut floor = 0u64;
            for tier in tiers {
                let ceiling = tier.up_to.unwrap_or(u64::MAX);
                let units = overage.min(ceiling).saturating_sub(floor);
                charge += per_1k(units, tier.price_per_1k);
                if overage <= ceiling {
                    break;
                }
                floor = ceiling;
            }
            charge
        }
        RequestPricing::Tiered {
            mode: TierMode::Volume,
            tiers,
        } => tiers
            .iter()
            .find(|t| t.up_to.is_none_or(|up_to| overage <= up_to))
            .map_or(Decimal::ZERO, |t| per_1k(overage, t.price_per_1k)),
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
}
