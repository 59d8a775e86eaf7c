//! Classes of HTTP status, defined once: the success class that is billable
//! unless a plans file says otherwise, and the client and server errors that
//! usage counts. The SQL of `queries/` spells the same ranges (`sc_status
//! BETWEEN 200 AND 299`); a test holds every file to these.

/// A class of HTTP statuses (`sc_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusClass {
    /// 2xx: billable by default.
    Success,
    /// 4xx.
    ClientError,
    /// 5xx.
    ServerError,
}

impl StatusClass {
    /// Every class, lowest first.
    #[cfg(test)]
    pub(crate) const ALL: [StatusClass; 3] = [Self::Success, Self::ClientError, Self::ServerError];

    /// The class billable when a plans file names none.
    pub(crate) const DEFAULT_BILLABLE: StatusClass = Self::Success;

    /// The hundreds digit of the class's statuses.
    pub(crate) const fn hundreds(self) -> i16 {
        match self {
            Self::Success => 2,
            Self::ClientError => 4,
            Self::ServerError => 5,
        }
    }

    /// The class's statuses, an inclusive range (`200..=299`).
    pub(crate) const fn range(self) -> (i16, i16) {
        (self.hundreds() * 100, self.hundreds() * 100 + 99)
    }

    /// Whether `status` is of this class.
    pub(crate) const fn contains(self, status: i16) -> bool {
        let (lo, hi) = self.range();
        lo <= status && status <= hi
    }

    /// The class as plans files and people write it (`2xx`).
    pub(crate) fn label(self) -> String {
        format!("{}xx", self.hundreds())
    }

    /// The SQL condition of the class: `sc_status BETWEEN 200 AND 299`.
    pub(crate) fn sql(self) -> String {
        let (lo, hi) = self.range();
        format!("sc_status BETWEEN {lo} AND {hi}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_their_hundreds() {
        assert_eq!(StatusClass::Success.range(), (200, 299));
        assert_eq!(StatusClass::ClientError.range(), (400, 499));
        assert_eq!(StatusClass::ServerError.range(), (500, 599));
        assert!(StatusClass::ClientError.contains(404));
        assert!(!StatusClass::ClientError.contains(500));
        assert!(!StatusClass::Success.contains(199));
        assert_eq!(StatusClass::DEFAULT_BILLABLE.label(), "2xx");
        assert_eq!(
            StatusClass::ServerError.sql(),
            "sc_status BETWEEN 500 AND 599"
        );
    }

    /// Every status range the named queries spell is one of the classes.
    #[test]
    fn the_queries_spell_the_classes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let sql = std::fs::read_to_string(&path).unwrap();
            for (at, _) in sql.match_indices("sc_status BETWEEN ") {
                let rest = &sql[at..];
                let spelled = StatusClass::ALL.iter().any(|c| rest.starts_with(&c.sql()));
                let line = rest.lines().next().unwrap_or("");
                assert!(spelled, "{}: `{line}` is no status class", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 15, "only {seen} status conditions in queries/");
    }
}
