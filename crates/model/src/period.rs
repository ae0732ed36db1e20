//! Report periods: the `D7`/`D30`/`D90`/`D180` parameter of the report functions and the
//! `reportPeriod` property (`"7"`, `"30"`, ...).

use std::fmt;

/// A report period in days, as Graph's report functions accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// 7 days.
    D7,
    /// 30 days.
    D30,
    /// 90 days.
    D90,
    /// 180 days.
    D180,
}

impl Period {
    /// Every period, shortest first.
    pub const ALL: [Period; 4] = [Period::D7, Period::D30, Period::D90, Period::D180];

    /// The longest period: a refresh reports no date more than its days before it.
    pub const LONGEST: Period = Period::D180;

    /// The number of days the period covers.
    pub const fn days(self) -> u16 {
        match self {
            Period::D7 => 7,
            Period::D30 => 30,
            Period::D90 => 90,
            Period::D180 => 180,
        }
    }

    /// The function-parameter spelling: `D7`.
    pub fn param(self) -> &'static str {
        match self {
            Period::D7 => "D7",
            Period::D30 => "D30",
            Period::D90 => "D90",
            Period::D180 => "D180",
        }
    }

    /// The stored `reportPeriod` spelling: `"7"`.
    pub fn stored(self) -> &'static str {
        &self.param()[1..]
    }

    /// Parses the function parameter exactly as Graph does: `D7`, `D30`, `D90`, `D180`.
    pub fn from_param(text: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.param() == text)
    }

    /// Parses a `reportPeriod` property value: `"7"` or, leniently, `"D7"`.
    pub fn from_property(text: &str) -> Option<Period> {
        Period::ALL
            .into_iter()
            .find(|p| p.stored() == text || p.param() == text)
    }

    /// The valid function-parameter values, for error messages.
    pub fn valid_params() -> &'static str {
        "D7, D30, D90, D180"
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.param())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_params_strictly_and_properties_leniently() {
        assert_eq!(Period::from_param("D30"), Some(Period::D30));
        for bad in ["d7", "7", "D8", "", "D07"] {
            assert_eq!(Period::from_param(bad), None, "{bad}");
        }
        assert_eq!(Period::from_property("180"), Some(Period::D180));
        assert_eq!(Period::from_property("D90"), Some(Period::D90));
        assert_eq!(Period::from_property("8"), None);
        assert_eq!(Period::D7.stored(), "7");
    }
}
