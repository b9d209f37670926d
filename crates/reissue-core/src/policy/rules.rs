//! The built-in rules: address lists, country lists, a country change within a
//! session, and an ordered set of rules.
//!
//! Every refusal is [`Decision::Deny`] at login and [`Decision::RevokeSession`]
//! at reissue, as the contract says (see [`Decision::refusal`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use super::{Decision, Policy, PolicyContext};
use crate::client::address::{canonical_net, parse_nets};
use crate::{Country, Error};

/// Refuses addresses by network: a deny list, and an optional allow list.
///
/// The deny list wins. A non-empty allow list refuses every address outside it;
/// an empty one allows everything not denied. IPv4-mapped IPv6 addresses are
/// matched as the IPv4 address they carry.
///
/// Rules: `cidr_denied`, `cidr_not_allowed`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl CidrRules {
    /// Rule name of a refusal by the deny list.
    pub const DENIED: &'static str = "cidr_denied";
    /// Rule name of a refusal by the allow list.
    pub const NOT_ALLOWED: &'static str = "cidr_not_allowed";

    /// Allows `allow` (everything when empty) except `deny`.
    pub fn new(
        allow: impl IntoIterator<Item = IpNet>,
        deny: impl IntoIterator<Item = IpNet>,
    ) -> Self {
        Self {
            allow: allow.into_iter().map(canonical_net).collect(),
            deny: deny.into_iter().map(canonical_net).collect(),
        }
    }

    /// Parses two comma-separated lists of CIDRs or bare addresses, either
    /// possibly empty (`CidrRules::parse("", "203.0.113.0/24, 2001:db8::/32")`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first entry that is neither.
    pub fn parse(allow: &str, deny: &str) -> Result<Self, Error> {
        Ok(Self {
            allow: parse_nets(allow, "allowed CIDR")?,
            deny: parse_nets(deny, "denied CIDR")?,
        })
    }

    /// Adds networks to the allow list.
    #[must_use]
    pub fn allow(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.allow.extend(nets.into_iter().map(canonical_net));
        self
    }

    /// Adds networks to the deny list.
    #[must_use]
    pub fn deny(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.deny.extend(nets.into_iter().map(canonical_net));
        self
    }

    /// The rule that refuses `ip`, `None` if it is allowed.
    fn refusing_rule(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = ip.to_canonical();
        let within = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
        if within(&self.deny) {
            Some(Self::DENIED)
        } else if !self.allow.is_empty() && !within(&self.allow) {
            Some(Self::NOT_ALLOWED)
        } else {
            None
        }
    }
}

impl Policy for CidrRules {
    fn check(&self, ctx: &PolicyContext<'_>) -> Decision {
        match self.refusing_rule(ctx.ip) {
            Some(rule) => Decision::refusal(ctx.stage, rule),
            None => Decision::Allow,
        }
    }
}

/// Refuses addresses by country: an allow list or a deny list of ISO 3166-1
/// alpha-2 codes.
///
/// An address whose country is unknown (loopback, private ranges, not in the
/// database) is never refused by a country rule: refuse those with
/// [`CidrRules`]. An empty allow list allows every country.
///
/// Rules: `country_not_allowed`, `country_denied`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryRule {
    mode: CountryMode,
    countries: Vec<Country>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountryMode {
    Allow,
    Deny,
}

impl CountryRule {
    /// Rule name of a refusal by an allow list.
    pub const NOT_ALLOWED: &'static str = "country_not_allowed";
    /// Rule name of a refusal by a deny list.
    pub const DENIED: &'static str = "country_denied";

    /// Allows only these countries (every country when empty).
    pub fn allow(countries: impl IntoIterator<Item = Country>) -> Self {
        Self::build(CountryMode::Allow, countries)
    }

    /// Refuses these countries.
    pub fn deny(countries: impl IntoIterator<Item = Country>) -> Self {
        Self::build(CountryMode::Deny, countries)
    }

    /// Parses an allow list: comma-separated ISO codes, case-insensitive,
    /// whitespace and empty entries ignored (`"de, AT,ch"`). The empty string
    /// allows every country.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first entry that is not an assigned
    /// ISO 3166-1 alpha-2 code (or `XK`, which MaxMind uses for Kosovo).
    pub fn parse_allow(list: &str) -> Result<Self, Error> {
        parse_countries(list).map(Self::allow)
    }

    /// Parses a deny list, as [`CountryRule::parse_allow`] does.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first entry that is not a known code.
    pub fn parse_deny(list: &str) -> Result<Self, Error> {
        parse_countries(list).map(Self::deny)
    }

    /// The listed countries, sorted.
    pub fn countries(&self) -> &[Country] {
        &self.countries
    }

    fn build(mode: CountryMode, countries: impl IntoIterator<Item = Country>) -> Self {
        let mut countries: Vec<Country> = countries.into_iter().collect();
        countries.sort_unstable();
        countries.dedup();
        Self { mode, countries }
    }

    /// The rule that refuses `country`, `None` if it is allowed.
    fn refusing_rule(&self, country: Option<Country>) -> Option<&'static str> {
        let country = country?;
        let listed = self.countries.binary_search(&country).is_ok();
        match self.mode {
            CountryMode::Allow if !self.countries.is_empty() && !listed => Some(Self::NOT_ALLOWED),
            CountryMode::Deny if listed => Some(Self::DENIED),
            _ => None,
        }
    }
}

impl Policy for CountryRule {
    fn check(&self, ctx: &PolicyContext<'_>) -> Decision {
        match self.refusing_rule(ctx.country) {
            Some(rule) => Decision::refusal(ctx.stage, rule),
            None => Decision::Allow,
        }
    }
}

/// Revokes a session whose country changed since its login: at reissue, when
/// both the login country and the current country are known and differ.
/// Unknown countries on either side never refuse.
///
/// Rule: `country_changed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountryChanged;

impl CountryChanged {
    /// Rule name of its refusals.
    pub const RULE: &'static str = "country_changed";
}

impl Policy for CountryChanged {
    fn check(&self, ctx: &PolicyContext<'_>) -> Decision {
        match (ctx.login_country, ctx.country) {
            (Some(then), Some(now)) if then != now => Decision::refusal(ctx.stage, Self::RULE),
            _ => Decision::Allow,
        }
    }
}

/// Rules consulted in order: the first decision other than
/// [`Decision::Allow`] wins. An empty set allows everything.
#[derive(Clone, Default)]
pub struct PolicySet {
    rules: Vec<Arc<dyn Policy>>,
}

impl PolicySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a rule, consulted after those already in the set.
    #[must_use]
    pub fn with(mut self, rule: impl Policy) -> Self {
        self.rules.push(Arc::new(rule));
        self
    }

    /// Appends a shared rule, consulted after those already in the set.
    pub fn push(&mut self, rule: Arc<dyn Policy>) {
        self.rules.push(rule);
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.rules).finish()
    }
}

impl FromIterator<Arc<dyn Policy>> for PolicySet {
    fn from_iter<I: IntoIterator<Item = Arc<dyn Policy>>>(iter: I) -> Self {
        Self {
            rules: iter.into_iter().collect(),
        }
    }
}

impl Extend<Arc<dyn Policy>> for PolicySet {
    fn extend<I: IntoIterator<Item = Arc<dyn Policy>>>(&mut self, iter: I) {
        self.rules.extend(iter);
    }
}

impl Policy for PolicySet {
    fn check(&self, ctx: &PolicyContext<'_>) -> Decision {
        self.rules
            .iter()
            .map(|rule| rule.check(ctx))
            .find(|decision| *decision != Decision::Allow)
            .unwrap_or(Decision::Allow)
    }
}

fn parse_countries(list: &str) -> Result<Vec<Country>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            Country::new(entry)
                .filter(|c| is_known_country(*c))
                .ok_or_else(|| {
                    let hint = if entry.eq_ignore_ascii_case("uk") {
                        " (the United Kingdom is GB)"
                    } else {
                        ""
                    };
                    Error::Config(format!(
                        "invalid country code {entry:?}: expected an ISO 3166-1 alpha-2 code{hint}"
                    ))
                })
        })
        .collect()
}

fn is_known_country(country: Country) -> bool {
    KNOWN_COUNTRIES.binary_search(&country.as_str()).is_ok()
}

/// The assigned ISO 3166-1 alpha-2 codes, plus `XK` (Kosovo, user-assigned but
/// used by MaxMind). Sorted, for binary search.
const KNOWN_COUNTRIES: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
    "AZ", //
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", //
    "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW",
    "CX", "CY", "CZ", //
    "DE", "DJ", "DK", "DM", "DO", "DZ", //
    "EC", "EE", "EG", "EH", "ER", "ES", "ET", //
    "FI", "FJ", "FK", "FM", "FO", "FR", //
    "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT",
    "GU", "GW", "GY", //
    "HK", "HM", "HN", "HR", "HT", "HU", //
    "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", //
    "JE", "JM", "JO", "JP", //
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", //
    "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", //
    "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", //
    "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", //
    "OM", //
    "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", //
    "QA", //
    "RE", "RO", "RS", "RU", "RW", //
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", //
    "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", //
    "UA", "UG", "UM", "US", "UY", "UZ", //
    "VA", "VC", "VE", "VG", "VI", "VN", "VU", //
    "WF", "WS", //
    "XK", //
    "YE", "YT", //
    "ZA", "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_countries_are_sorted_and_unique() {
        assert!(KNOWN_COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        assert!(
            KNOWN_COUNTRIES
                .iter()
                .all(|c| Country::new(c).is_some_and(|k| k.as_str() == *c))
        );
    }

    #[test]
    fn country_lists_refuse_unassigned_codes() {
        assert!(parse_countries("de, at,CH,").is_ok());
        for bad in ["XX", "UK", "EU", "D", "DEU", "1A"] {
            let Err(Error::Config(msg)) = parse_countries(&format!("DE,{bad}")) else {
                panic!("{bad} accepted");
            };
            assert!(msg.contains(bad), "{msg}");
        }
    }
}
