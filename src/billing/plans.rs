//! `plans.toml`: the billing settings, the plans and their prices, and which
//! API keys belong to which customer. Parsed once and validated here; money
//! is `rust_decimal::Decimal`, never a float.

use super::meters::Meters;
use crate::error::{Error, Result};
use crate::key::KeyHasher;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// The whole plans file, validated.
#[derive(Debug, Clone)]
pub(crate) struct Plans {
    pub(crate) currency: String,
    pub(crate) billable: StatusSet,
    pub(crate) grace_hours: u32,
    /// Every meter: the built-in ones and those of `[meters.*]`.
    pub(crate) meters: Meters,
    pub(crate) plans: BTreeMap<String, Plan>,
    pub(crate) customers: Vec<Customer>,
    /// SHA-256 of the file's bytes (for export manifests).
    pub(crate) hash: String,
}

/// Which statuses count as billable: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusSet(pub Vec<(i16, i16)>);

impl StatusSet {
    /// Parses `2xx`, `2xx,3xx`, `200-299,304`.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "billable = {text:?}: use classes like 2xx, ranges like 200-299, or codes like 304"
            ))
        };
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = if let Some(class) = part.strip_suffix("xx") {
                let c: i16 = class.parse().map_err(|_| bad())?;
                (c * 100, c * 100 + 99)
            } else if let Some((lo, hi)) = part.split_once('-') {
                (
                    lo.trim().parse().map_err(|_| bad())?,
                    hi.trim().parse().map_err(|_| bad())?,
                )
            } else {
                let code: i16 = part.parse().map_err(|_| bad())?;
                (code, code)
            };
            if range.0 > range.1 || range.0 < 100 || range.1 > 999 {
                return Err(bad());
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err(bad());
        }
        Ok(Self(ranges))
    }

    pub(crate) fn contains(&self, status: i16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

/// How tiers price the overage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TierMode {
    /// Each tier prices the units inside it.
    Graduated,
    /// All units at the rate of the tier the total reaches.
    Volume,
}

/// One tier: units up to `up_to` (of overage; `None` is unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tier {
    pub(crate) up_to: Option<u64>,
    pub(crate) price_per_1k: Decimal,
}

/// How requests beyond the included ones are priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestPricing {
    None,
    Flat { price_per_1k: Decimal },
    Tiered { mode: TierMode, tiers: Vec<Tier> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) name: String,
    pub(crate) base_fee: Decimal,
    pub(crate) included_requests: u64,
    pub(crate) requests: RequestPricing,
    pub(crate) price_per_gb_out: Decimal,
    pub(crate) monthly_quota: Option<u64>,
    pub(crate) daily_quota: Option<u64>,
    /// What the plan charges and limits, by meter slug: the `charges` tables,
    /// and the shorthand fields as charges on `billable_requests` and
    /// `bytes_out`.
    pub(crate) charges: BTreeMap<String, Charge>,
}

/// How units of a meter beyond the included ones are priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnitPricing {
    /// Not priced (a charge may only limit).
    None,
    /// Every unit at a price (`price_per_unit`, or `price_per_1k` / 1000).
    PerUnit(Decimal),
    /// Whole packages of `size` units, the last one rounded up.
    Package { size: u64, price: Decimal },
    /// Tiers over the units beyond the included ones.
    Tiered { mode: TierMode, tiers: Vec<Tier> },
}

/// What a plan charges for one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Charge {
    pub(crate) meter: String,
    /// Units free of charge each period.
    pub(crate) included: u64,
    pub(crate) pricing: UnitPricing,
    pub(crate) daily_limit: Option<u64>,
    pub(crate) monthly_limit: Option<u64>,
    /// Made from the plan's shorthand fields: `included_requests`, `tiers`
    /// and `price_per_1k_requests` charge `billable_requests`,
    /// `price_per_gb_out` charges `bytes_out` (invoice columns
    /// `request_charge` and `bandwidth_charge`), and the quotas limit
    /// `requests` (`edgemeter check`'s quota lines); charges of a
    /// `charges` table get columns `<meter>_quantity` and `<meter>_charge`.
    pub(crate) shorthand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) plan: String,
    /// The `api_key_id`s of the customer's keys.
    pub(crate) key_ids: Vec<String>,
    pub(crate) stripe_customer_id: Option<String>,
    pub(crate) lago_subscription_id: Option<String>,
    pub(crate) openmeter_subject: Option<String>,
}

mod raw {
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct File {
        pub(crate) billing: Billing,
        #[serde(default)]
        pub(crate) plans: BTreeMap<String, Plan>,
        #[serde(default)]
        pub(crate) customers: Vec<Customer>,
        #[serde(default)]
        pub(crate) meters: BTreeMap<String, crate::billing::meters::raw::Meter>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Billing {
        pub(crate) currency: String,
        #[serde(default = "two_xx")]
        pub(crate) billable: String,
        #[serde(default)]
        pub(crate) grace_hours: u32,
    }

    fn two_xx() -> String {
        crate::schema::status::StatusClass::DEFAULT_BILLABLE.label()
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Plan {
        #[serde(default)]
        pub(crate) base_fee: Option<String>,
        #[serde(default)]
        pub(crate) included_requests: u64,
        pub(crate) tier_mode: Option<String>,
        #[serde(default)]
        pub(crate) tiers: Vec<Tier>,
        pub(crate) price_per_1k_requests: Option<String>,
        pub(crate) price_per_gb_out: Option<String>,
        pub(crate) monthly_quota: Option<u64>,
        pub(crate) daily_quota: Option<u64>,
        #[serde(default)]
        pub(crate) charges: BTreeMap<String, Charge>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Charge {
        #[serde(default)]
        pub(crate) included: u64,
        pub(crate) price_per_unit: Option<String>,
        pub(crate) price_per_1k: Option<String>,
        pub(crate) package: Option<Package>,
        pub(crate) tier_mode: Option<String>,
        #[serde(default)]
        pub(crate) tiers: Vec<Tier>,
        pub(crate) daily_limit: Option<u64>,
        pub(crate) monthly_limit: Option<u64>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Package {
        pub(crate) size: u64,
        pub(crate) price: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Tier {
        pub(crate) up_to: UpTo,
        pub(crate) price_per_1k: Option<String>,
        pub(crate) price_per_unit: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum UpTo {
        Units(u64),
        Text(String),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Customer {
        pub(crate) id: String,
        #[serde(default)]
        pub(crate) name: String,
        pub(crate) plan: String,
        #[serde(default)]
        pub(crate) keys: Vec<String>,
        pub(crate) stripe_customer_id: Option<String>,
        pub(crate) lago_subscription_id: Option<String>,
        pub(crate) openmeter_subject: Option<String>,
    }
}

/// Bytes in a (decimal) gigabyte: `price_per_gb_out` is per 10^9 bytes.
const GB: u64 = 1_000_000_000;

/// Validates tiers (`context` ends where `tier_mode`/`tiers` are appended);
/// each tier gives `price_per_1k` or `price_per_unit`.
fn tiers(context: &str, mode: Option<&str>, raw: Vec<raw::Tier>) -> Result<(TierMode, Vec<Tier>)> {
    let mode = match mode.unwrap_or("graduated") {
        "graduated" => TierMode::Graduated,
        "volume" => TierMode::Volume,
        other => {
            return Err(Error::Config(format!(
                "{context}tier_mode = {other:?}: use graduated or volume"
            )));
        }
    };
    let mut tiers = Vec::new();
    for t in raw {
        let up_to = match t.up_to {
            raw::UpTo::Units(n) => Some(n),
            raw::UpTo::Text(s) if s == "inf" => None,
            raw::UpTo::Text(s) => {
                return Err(Error::Config(format!(
                    "{context}tiers.up_to = {s:?}: use a number or \"inf\""
                )));
            }
        };
        let price_per_1k = match (t.price_per_1k, t.price_per_unit) {
            (Some(p), None) => money(&format!("{context}tiers.price_per_1k"), &p)?,
            (None, Some(p)) => {
                money(&format!("{context}tiers.price_per_unit"), &p)? * Decimal::from(1000)
            }
            _ => {
                return Err(Error::Config(format!(
                    "{context}tiers: each tier gives price_per_1k or price_per_unit"
                )));
            }
        };
        tiers.push(Tier {
            up_to,
            price_per_1k,
        });
    }
    let ascending = tiers.windows(2).all(|w| match (w[0].up_to, w[1].up_to) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    });
    if !ascending || tiers.last().is_some_and(|t| t.up_to.is_some()) {
        return Err(Error::Config(format!(
            "{context}tiers must ascend and end with up_to = \"inf\""
        )));
    }
    Ok((mode, tiers))
}

fn money(context: &str, text: &str) -> Result<Decimal> {
    let value = Decimal::from_str_exact(text.trim())
        .map_err(|_| Error::Config(format!("{context} = {text:?} is not a decimal amount")))?;
    if value.is_sign_negative() {
        return Err(Error::Config(format!("{context} = {text:?} is negative")));
    }
    Ok(value)
}

impl Plans {
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Config(format!("--plans {}: {e}", path.display())))?;
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| Error::Config(format!("{} is not UTF-8", path.display())))?;
        let mut plans = Self::parse(&text, &KeyHasher::from_env())
            .map_err(|e| e.in_setting(&path.display().to_string()))?;
        plans.hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        Ok(plans)
    }

    /// Parses and validates plans; raw keys are hashed with `hasher`.
    pub(crate) fn parse(text: &str, hasher: &KeyHasher) -> Result<Self> {
        let raw: raw::File = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let billable = StatusSet::parse(&raw.billing.billable)?;
        let meters = Meters::parse(raw.meters, &billable)?;
        let mut plans = BTreeMap::new();
        for (name, p) in raw.plans {
            let ctx = |field: &str| format!("plans.{name}.{field}");
            let requests = match (p.price_per_1k_requests, p.tiers.is_empty()) {
                (Some(_), false) => {
                    return Err(Error::Config(format!(
                        "plans.{name}: give either price_per_1k_requests or tiers, not both"
                    )));
                }
                (Some(price), true) => RequestPricing::Flat {
                    price_per_1k: money(&ctx("price_per_1k_requests"), &price)?,
                },
                (None, true) => RequestPricing::None,
                (None, false) => {
                    let (mode, tiers) = tiers(&ctx(""), p.tier_mode.as_deref(), p.tiers)?;
                    RequestPricing::Tiered { mode, tiers }
                }
            };
            let price_per_gb_out = money(
                &ctx("price_per_gb_out"),
                p.price_per_gb_out.as_deref().unwrap_or("0"),
            )?;
            let mut charges = BTreeMap::new();
            if p.included_requests > 0 || requests != RequestPricing::None {
                charges.insert(
                    "billable_requests".to_string(),
                    Charge {
                        meter: "billable_requests".into(),
                        included: p.included_requests,
                        pricing: match &requests {
                            RequestPricing::None => UnitPricing::None,
                            RequestPricing::Flat { price_per_1k } => {
                                UnitPricing::PerUnit(price_per_1k / Decimal::from(1000))
                            }
                            RequestPricing::Tiered { mode, tiers } => UnitPricing::Tiered {
                                mode: *mode,
                                tiers: tiers.clone(),
                            },
                        },
                        daily_limit: None,
                        monthly_limit: None,
                        shorthand: true,
                    },
                );
            }
            // The quotas count every request of the customer's keys.
            if p.monthly_quota.is_some() || p.daily_quota.is_some() {
                charges.insert(
                    "requests".to_string(),
                    Charge {
                        meter: "requests".into(),
                        included: 0,
                        pricing: UnitPricing::None,
                        daily_limit: p.daily_quota,
                        monthly_limit: p.monthly_quota,
                        shorthand: true,
                    },
                );
            }
            if !price_per_gb_out.is_zero() {
                charges.insert(
                    "bytes_out".to_string(),
                    Charge {
                        meter: "bytes_out".into(),
                        included: 0,
                        pricing: UnitPricing::PerUnit(price_per_gb_out / Decimal::from(GB)),
                        daily_limit: None,
                        monthly_limit: None,
                        shorthand: true,
                    },
                );
            }
            for (slug, c) in p.charges {
                let ctx = |field: &str| format!("plans.{name}.charges.{slug}{field}");
                meters.require(&slug, &ctx(""))?;
                if charges.contains_key(&slug) {
                    return Err(Error::Config(format!(
                        "{}: the plan already charges {slug} through its shorthand fields (included_requests, tiers, price_per_1k_requests, price_per_gb_out, the quotas); use one or the other",
                        ctx("")
                    )));
                }
                let given = [
                    c.price_per_unit.is_some(),
                    c.price_per_1k.is_some(),
                    c.package.is_some(),
                    !c.tiers.is_empty(),
                ];
                if given.iter().filter(|g| **g).count() > 1 {
                    return Err(Error::Config(format!(
                        "{}: give one of price_per_unit, price_per_1k, package or tiers",
                        ctx("")
                    )));
                }
                if c.tier_mode.is_some() && c.tiers.is_empty() {
                    return Err(Error::Config(format!(
                        "{}: tier_mode without tiers",
                        ctx("")
                    )));
                }
                let pricing = if let Some(price) = c.price_per_unit {
                    UnitPricing::PerUnit(money(&ctx(".price_per_unit"), &price)?)
                } else if let Some(price) = c.price_per_1k {
                    UnitPricing::PerUnit(
                        money(&ctx(".price_per_1k"), &price)? / Decimal::from(1000),
                    )
                } else if let Some(package) = c.package {
                    if package.size == 0 {
                        return Err(Error::Config(format!(
                            "{}.size = 0: a package holds at least one unit",
                            ctx(".package")
                        )));
                    }
                    UnitPricing::Package {
                        size: package.size,
                        price: money(&ctx(".package.price"), &package.price)?,
                    }
                } else if !c.tiers.is_empty() {
                    let (mode, tiers) = tiers(&ctx("."), c.tier_mode.as_deref(), c.tiers)?;
                    UnitPricing::Tiered { mode, tiers }
                } else {
                    UnitPricing::None
                };
                for (field, limit) in [
                    ("daily_limit", c.daily_limit),
                    ("monthly_limit", c.monthly_limit),
                ] {
                    if limit == Some(0) {
                        return Err(Error::Config(format!(
                            "{}{field} = 0: a limit of no units alerts on every period; leave it out for no limit",
                            ctx(".")
                        )));
                    }
                }
                charges.insert(
                    slug.clone(),
                    Charge {
                        meter: slug.clone(),
                        included: c.included,
                        pricing,
                        daily_limit: c.daily_limit,
                        monthly_limit: c.monthly_limit,
                        shorthand: false,
                    },
                );
            }
            plans.insert(
                name.clone(),
                Plan {
                    name: name.clone(),
                    base_fee: money(&ctx("base_fee"), p.base_fee.as_deref().unwrap_or("0"))?,
                    included_requests: p.included_requests,
                    requests,
                    price_per_gb_out,
                    monthly_quota: p.monthly_quota,
                    daily_quota: p.daily_quota,
                    charges,
                },
            );
        }
        let mut customers = Vec::new();
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        for c in raw.customers {
            if !plans.contains_key(&c.plan) {
                return Err(Error::Config(format!(
                    "customer {:?}: no plan named {:?}",
                    c.id, c.plan
                )));
            }
            if customers.iter().any(|x: &Customer| x.id == c.id) {
                return Err(Error::Config(format!("customer {:?} appears twice", c.id)));
            }
            let mut key_ids = Vec::new();
            for key in &c.keys {
                let id = match key.strip_prefix("sha256:") {
                    Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        hex.to_ascii_lowercase()
                    }
                    Some(_) => {
                        return Err(Error::Config(format!(
                            "customer {:?}: a sha256: key id needs 64 hex digits",
                            c.id
                        )));
                    }
                    None => hasher.id_of(key),
                };
                if let Some(other) = owner.insert(id.clone(), c.id.clone()) {
                    return Err(Error::Config(format!(
                        "a key of customer {:?} also belongs to {other:?}",
                        c.id
                    )));
                }
                key_ids.push(id);
            }
            key_ids.sort();
            customers.push(Customer {
                name: c.name,
                id: c.id,
                plan: c.plan,
                key_ids,
                stripe_customer_id: c.stripe_customer_id,
                lago_subscription_id: c.lago_subscription_id,
                openmeter_subject: c.openmeter_subject,
            });
        }
        customers.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Self {
            currency: raw.billing.currency,
            billable,
            meters,
            grace_hours: raw.billing.grace_hours,
            plans,
            customers,
            hash: String::new(),
        })
    }
}

impl FromStr for StatusSet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billable_sets() {
        let s = StatusSet::parse("200-299,304").unwrap();
        assert!(s.contains(200) && s.contains(299) && s.contains(304));
        assert!(!s.contains(300) && !s.contains(0));
        assert!(StatusSet::parse("2xx,3xx").unwrap().contains(302));
        assert!(StatusSet::parse("abc").is_err());
        assert!(StatusSet::parse("").is_err());
    }

    #[test]
    fn raw_keys_are_hashed_and_ids_kept() {
        let plans = Plans::parse(
            r#"
            [billing]
            currency = "USD"
            [plans.pro]
            base_fee = "99.00"
            [[customers]]
            id = "cus_acme"
            plan = "pro"
            keys = ["ak_live_1", "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"]
            "#,
            &KeyHasher::new(None),
        )
        .unwrap();
        let ids = &plans.customers[0].key_ids;
        assert!(ids.contains(&KeyHasher::new(None).id_of("ak_live_1")));
        assert!(ids.contains(
            &"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
        ));
    }

    #[test]
    fn invalid_plans_are_refused() {
        let h = KeyHasher::new(None);
        for bad in [
            "[billing]\ncurrency='USD'\n[plans.p]\nbase_fee='ten'",
            "[billing]\ncurrency='USD'\n[plans.p]\ntiers=[{up_to=10, price_per_1k='1'}]",
            "[billing]\ncurrency='USD'\n[plans.p]\n[[customers]]\nid='a'\nplan='q'",
            "[billing]\ncurrency='USD'\nbillable='2xx'\nextra=1",
        ] {
            assert!(Plans::parse(bad, &h).is_err(), "{bad}");
        }
    }

    #[test]
    fn shorthand_fields_are_charges_on_built_in_meters() {
        let plans = Plans::parse(
            r#"
            [billing]
            currency = "USD"
            [meters.search]
            aggregation = "count"
            filter = { endpoint = "/v1/search" }
            [plans.pro]
            included_requests = 1000
            price_per_1k_requests = "2.50"
            price_per_gb_out = "0.09"
            monthly_quota = 5000
            [plans.pro.charges.search]
            included = 10
            package = { size = 100, price = "1.00" }
            daily_limit = 50
            "#,
            &KeyHasher::new(None),
        )
        .unwrap();
        let charges = &plans.plans["pro"].charges;
        let slugs: Vec<&str> = charges.keys().map(String::as_str).collect();
        assert_eq!(
            slugs,
            ["billable_requests", "bytes_out", "requests", "search"]
        );
        let requests = &charges["billable_requests"];
        assert!(requests.shorthand && requests.included == 1000);
        // 2.50 per 1k is 0.0025 a unit; 0.09 per 10^9 bytes is 9E-11 a byte.
        assert_eq!(requests.pricing, UnitPricing::PerUnit(Decimal::new(25, 4)));
        assert_eq!(
            charges["bytes_out"].pricing,
            UnitPricing::PerUnit(Decimal::new(9, 11))
        );
        assert_eq!(charges["requests"].monthly_limit, Some(5000));
        let search = &charges["search"];
        assert!(!search.shorthand);
        assert_eq!(
            (search.included, search.daily_limit, &search.pricing),
            (
                10,
                Some(50),
                &UnitPricing::Package {
                    size: 100,
                    price: Decimal::new(100, 2)
                }
            )
        );
    }

    #[test]
    fn bad_charges_name_the_plan_and_meter() {
        let h = KeyHasher::new(None);
        let head = "[billing]\ncurrency='USD'\n[meters.search]\naggregation='count'\n";
        for (body, wanted) in [
            (
                "[plans.p.charges.nosuch]\nincluded=1",
                "plans.p.charges.nosuch: no meter named \"nosuch\"",
            ),
            (
                "[plans.p.charges.search]\nprice_per_unit='1'\nprice_per_1k='2'",
                "plans.p.charges.search: give one of",
            ),
            (
                "[plans.p.charges.search]\npackage={size=0, price='1'}",
                "plans.p.charges.search.package.size = 0",
            ),
            (
                "[plans.p]\nincluded_requests=5\n[plans.p.charges.billable_requests]\nincluded=1",
                "already charges billable_requests",
            ),
            (
                "[plans.p.charges.search]\nmonthly_limit=0",
                "plans.p.charges.search.monthly_limit = 0",
            ),
        ] {
            let err = Plans::parse(&format!("{head}{body}"), &h)
                .unwrap_err()
                .to_string();
            assert!(err.contains(wanted), "{body}: {err}");
        }
    }
}
