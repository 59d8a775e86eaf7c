//! Classes of HTTP status, defined once: the success class that is billable
//! unless a plans file says otherwise, and the client and server errors that
//! usage counts. The SQL of `queries/` spells no status number: it names a
//! class's bounds as parameters (`sc_status BETWEEN $billable_lo AND
//! $billable_hi`), bound from [`StatusClass::COUNTED`] with every named
//! query (`crate::query::status_params`); a test holds every file to these.

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

    /// The classes the SQL counts, by the name of their bounds' parameters:
    /// `("billable", …)` is bound as `$billable_lo` and `$billable_hi`.
    pub(crate) const COUNTED: [(&'static str, StatusClass); 3] = [
        ("billable", Self::DEFAULT_BILLABLE),
        ("client_error", Self::ClientError),
        ("server_error", Self::ServerError),
    ];

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

    /// The names of the parameters of a counted class's bounds
    /// (`billable_lo`, `billable_hi`).
    pub(crate) fn param_names(name: &str) -> (String, String) {
        (format!("{name}_lo"), format!("{name}_hi"))
    }

    /// The SQL condition of a counted class, its bounds as parameters:
    /// `sc_status BETWEEN $billable_lo AND $billable_hi`.
    pub(crate) fn sql(name: &str) -> String {
        let (lo, hi) = Self::param_names(name);
        format!("sc_status BETWEEN ${lo} AND ${hi}")
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
            StatusClass::sql("server_error"),
            "sc_status BETWEEN $server_error_lo AND $server_error_hi"
        );
    }

    /// No named query spells a status class: every status range is a
    /// counted class's condition, its bounds parameters, and no line that
    /// reads `sc_status` compares it with a class's bound or a class label.
    #[test]
    fn no_query_spells_a_class() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
        let bounds: Vec<String> = StatusClass::ALL
            .iter()
            .flat_map(|c| [c.range().0.to_string(), c.range().1.to_string()])
            .collect();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // The SQL without its comments (which may say `2xx`).
            let sql: String = text
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for (at, _) in sql.match_indices("sc_status BETWEEN ") {
                let rest = &sql[at..];
                let line = rest.lines().next().unwrap_or("");
                let counted = StatusClass::COUNTED
                    .iter()
                    .any(|(name, _)| rest.starts_with(&StatusClass::sql(name)));
                assert!(counted, "{}: `{line}` is no status class", path.display());
                seen += 1;
            }
            for line in sql.lines().filter(|l| l.contains("sc_status")) {
                let tokens: Vec<&str> = line
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .collect();
                assert!(
                    !tokens.iter().any(|t| bounds.iter().any(|b| b == t)),
                    "{}: `{line}` spells a status class's bound",
                    path.display()
                );
                assert!(
                    !tokens.iter().any(|t| t.len() == 3 && t.ends_with("xx")),
                    "{}: `{line}` spells a status class",
                    path.display()
                );
            }
        }
        assert!(seen >= 15, "only {seen} status conditions in queries/");
    }
}
