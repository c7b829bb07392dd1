//! PEP 440 versions and version specifiers: the subset a package index needs to order versions,
//! spot pre-releases and evaluate `includes`/`excludes` requirements.

use std::cmp::Ordering;
use std::fmt;

/// A parsed PEP 440 version. Equality and ordering follow PEP 440 (`1.0 == 1.0.0`, `1.0.dev1 <
/// 1.0a1 < 1.0 < 1.0.post1`).
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    pre: Option<(PreKind, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalSegment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PreKind {
    Alpha,
    Beta,
    Rc,
}

/// Local version segments: strings sort before numbers (PEP 440).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalSegment {
    Text(String),
    Number(u64),
}

/// A tiny cursor over the lower-cased version text.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.at += prefix.len();
            true
        } else {
            false
        }
    }

    fn eat_separator(&mut self) -> bool {
        self.eat(".") || self.eat("-") || self.eat("_")
    }

    fn number(&mut self) -> Option<u64> {
        let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let value = self.rest()[..digits].parse().ok();
        self.at += digits;
        value
    }

    /// An optional separator and number after a pre/post/dev label (`a1`, `a.1`, `a`).
    fn label_number(&mut self) -> u64 {
        let saved = self.at;
        let separated = self.eat_separator();
        match self.number() {
            Some(n) => n,
            None => {
                if separated {
                    self.at = saved;
                }
                0
            }
        }
    }
}

impl Version {
    /// Parses `text` with PEP 440's normalization rules (case, `v` prefix, separators, spelled-out
    /// labels such as `alpha`, `preview`, `rev`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let mut cursor = Cursor {
            text: &lower,
            at: 0,
        };
        cursor.eat("v");
        let mut epoch = 0;
        let mut release = Vec::new();
        let first = cursor.number().ok_or("a version starts with a number")?;
        if cursor.eat("!") {
            epoch = first;
            release.push(
                cursor
                    .number()
                    .ok_or("expected a release number after the epoch")?,
            );
        } else {
            release.push(first);
        }
        loop {
            let saved = cursor.at;
            if cursor.eat(".") {
                if let Some(n) = cursor.number() {
                    release.push(n);
                    continue;
                }
                cursor.at = saved;
            }
            break;
        }
        let mut pre = None;
        {
            let saved = cursor.at;
            cursor.eat_separator();
            let kind = [
                ("alpha", PreKind::Alpha),
                ("beta", PreKind::Beta),
                ("preview", PreKind::Rc),
                ("pre", PreKind::Rc),
                ("rc", PreKind::Rc),
                ("a", PreKind::Alpha),
                ("b", PreKind::Beta),
                ("c", PreKind::Rc),
            ]
            .into_iter()
            .find(|(label, _)| cursor.eat(label));
            match kind {
                Some((_, kind)) => pre = Some((kind, cursor.label_number())),
                None => cursor.at = saved,
            }
        }
        let mut post = None;
        {
            let saved = cursor.at;
            if cursor.eat("-") {
                if let Some(n) = cursor.number() {
                    post = Some(n);
                } else {
                    cursor.at = saved;
                }
            }
            if post.is_none() {
                cursor.eat_separator();
                if ["post", "rev", "r"]
                    .into_iter()
                    .any(|label| cursor.eat(label))
                {
                    post = Some(cursor.label_number());
                } else {
                    cursor.at = saved;
                }
            }
        }
        let mut dev = None;
        {
            let saved = cursor.at;
            cursor.eat_separator();
            if cursor.eat("dev") {
                dev = Some(cursor.label_number());
            } else {
                cursor.at = saved;
            }
        }
        let mut local = Vec::new();
        if cursor.eat("+") {
            for segment in cursor.rest().split(['.', '-', '_']) {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("invalid local version label in {text:?}"));
                }
                local.push(match segment.parse() {
                    Ok(n) if segment.bytes().all(|b| b.is_ascii_digit()) => LocalSegment::Number(n),
                    _ => LocalSegment::Text(segment.into()),
                });
            }
            cursor.at = lower.len();
        }
        if !cursor.rest().is_empty() {
            return Err(format!(
                "unexpected {:?} in version {text:?}",
                cursor.rest()
            ));
        }
        Ok(Self {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// A pre-release or development release (`1.0a1`, `1.0.dev3`).
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }

    fn is_postrelease(&self) -> bool {
        self.post.is_some()
    }

    /// The version without its local label.
    fn public(&self) -> Self {
        Self {
            local: Vec::new(),
            ..self.clone()
        }
    }

    /// The release segment with trailing zeros dropped, as compared.
    fn trimmed_release(&self) -> &[u64] {
        let end = self
            .release
            .iter()
            .rposition(|&n| n != 0)
            .map_or(0, |i| i + 1);
        &self.release[..end]
    }

    fn sort_key(&self) -> impl Ord + '_ {
        // Pre-release: a dev release of a final version sorts before its pre-releases; a final
        // release after them.
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (0, None),
            (Some(pre), _, _) => (1, Some(pre)),
            (None, _, _) => (2, None),
        };
        let dev = match self.dev {
            Some(n) => (0, n),
            None => (1, 0),
        };
        (
            self.epoch,
            self.trimmed_release(),
            pre,
            self.post,
            dev,
            &self.local,
        )
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

/// The normalized form (`1.0a1`, `2!1.0.post2.dev3+local.7`).
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}!", self.epoch)?;
        }
        let release: Vec<String> = self.release.iter().map(u64::to_string).collect();
        f.write_str(&release.join("."))?;
        if let Some((kind, n)) = self.pre {
            let label = match kind {
                PreKind::Alpha => "a",
                PreKind::Beta => "b",
                PreKind::Rc => "rc",
            };
            write!(f, "{label}{n}")?;
        }
        if let Some(n) = self.post {
            write!(f, ".post{n}")?;
        }
        if let Some(n) = self.dev {
            write!(f, ".dev{n}")?;
        }
        for (i, segment) in self.local.iter().enumerate() {
            f.write_str(if i == 0 { "+" } else { "." })?;
            match segment {
                LocalSegment::Text(text) => f.write_str(text)?,
                LocalSegment::Number(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

/// One version specifier clause (`>=1.0`, `==2.*`, `~=1.4.2`).
#[derive(Debug, Clone)]
pub struct Specifier {
    operator: Operator,
    text: String,
    version: Option<Version>,
    /// For `==X.*` and `!=X.*`: the release prefix.
    prefix: Option<(u64, Vec<u64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Compatible,
    Equal,
    NotEqual,
    LessEqual,
    GreaterEqual,
    Less,
    Greater,
    Arbitrary,
}

impl Specifier {
    /// Parses one clause.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let operators = [
            ("===", Operator::Arbitrary),
            ("~=", Operator::Compatible),
            ("==", Operator::Equal),
            ("!=", Operator::NotEqual),
            ("<=", Operator::LessEqual),
            (">=", Operator::GreaterEqual),
            ("<", Operator::Less),
            (">", Operator::Greater),
        ];
        let (operator, rest) = operators
            .into_iter()
            .find_map(|(symbol, operator)| {
                text.strip_prefix(symbol)
                    .map(|rest| (operator, rest.trim()))
            })
            .ok_or_else(|| {
                format!("{text:?} does not start with a comparison operator (==, >=, ~=, ...)")
            })?;
        if operator == Operator::Arbitrary {
            return Ok(Self {
                operator,
                text: rest.into(),
                version: None,
                prefix: None,
            });
        }
        if let Some(base) = rest.strip_suffix(".*") {
            if !matches!(operator, Operator::Equal | Operator::NotEqual) {
                return Err(format!("{text:?}: a .* suffix only goes with == and !="));
            }
            let version = Version::parse(base).map_err(|e| format!("{text:?}: {e}"))?;
            if version.pre.is_some()
                || version.post.is_some()
                || version.dev.is_some()
                || !version.local.is_empty()
            {
                return Err(format!("{text:?}: only release numbers may precede .*"));
            }
            return Ok(Self {
                operator,
                text: rest.into(),
                version: None,
                prefix: Some((version.epoch, version.release)),
            });
        }
        let version = Version::parse(rest).map_err(|e| format!("{text:?}: {e}"))?;
        if operator == Operator::Compatible && version.release.len() < 2 {
            return Err(format!("{text:?}: ~= needs at least two release numbers"));
        }
        Ok(Self {
            operator,
            text: rest.into(),
            version: Some(version),
            prefix: None,
        })
    }

    /// Whether this clause names a pre-release, which lets pre-releases match (PEP 440).
    fn names_prerelease(&self) -> bool {
        self.version.as_ref().is_some_and(Version::is_prerelease)
    }

    /// Whether `candidate` satisfies this clause (pre-releases are not filtered here).
    pub fn contains(&self, candidate: &Version) -> bool {
        if let Some((epoch, prefix)) = &self.prefix {
            let matches = candidate.epoch == *epoch
                && prefix
                    .iter()
                    .enumerate()
                    .all(|(i, n)| candidate.release.get(i).copied().unwrap_or(0) == *n);
            return matches == (self.operator == Operator::Equal);
        }
        let Some(version) = &self.version else {
            return candidate.to_string().eq_ignore_ascii_case(&self.text);
        };
        let public = candidate.public();
        let equal = || {
            if version.local.is_empty() {
                public == *version
            } else {
                candidate == version
            }
        };
        match self.operator {
            Operator::Equal => equal(),
            Operator::NotEqual => !equal(),
            Operator::LessEqual => public <= *version,
            Operator::GreaterEqual => public >= *version,
            Operator::Less => {
                public < *version
                    && !(candidate.is_prerelease()
                        && !version.is_prerelease()
                        && candidate.release_matches(version))
            }
            Operator::Greater => {
                public > *version
                    && !(candidate.is_postrelease()
                        && !version.is_postrelease()
                        && candidate.release_matches(version))
            }
            Operator::Compatible => {
                let prefix = &version.release[..version.release.len() - 1];
                public >= *version
                    && candidate.epoch == version.epoch
                    && prefix
                        .iter()
                        .enumerate()
                        .all(|(i, n)| candidate.release.get(i).copied().unwrap_or(0) == *n)
            }
            Operator::Arbitrary => unreachable!("handled above"),
        }
    }
}

impl Version {
    /// Same epoch and release numbers (ignoring trailing zeros).
    fn release_matches(&self, other: &Version) -> bool {
        self.epoch == other.epoch && self.trimmed_release() == other.trimmed_release()
    }
}

/// A comma-separated set of specifiers; empty matches every version.
#[derive(Debug, Clone, Default)]
pub struct SpecifierSet(Vec<Specifier>);

impl SpecifierSet {
    /// Parses `>=1.0, <2` (empty text is the empty set).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::default());
        }
        text.split(',')
            .map(Specifier::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether the set is empty (matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every clause contains `candidate`. Pre-releases match only when `prereleases` is
    /// set or a clause names a pre-release itself, as pip and packaging decide.
    pub fn contains(&self, candidate: &Version, prereleases: bool) -> bool {
        if candidate.is_prerelease()
            && !prereleases
            && !self.0.iter().any(Specifier::names_prerelease)
        {
            return false;
        }
        self.0.iter().all(|specifier| specifier.contains(candidate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn versions_normalize_as_pep_440_says() {
        for (input, normalized) in [
            ("1.0", "1.0"),
            ("v1.0", "1.0"),
            ("1.0-alpha.1", "1.0a1"),
            ("1.0.PREVIEW2", "1.0rc2"),
            ("1.0c1", "1.0rc1"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev", "1.0.post0"),
            ("1.0-dev", "1.0.dev0"),
            ("1!2.0b3.post4.dev5+Ubuntu-1", "1!2.0b3.post4.dev5+ubuntu.1"),
        ] {
            assert_eq!(v(input).to_string(), normalized, "{input}");
        }
        for bad in ["", "one", "1.0+", "1.0 final", "1..0"] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn versions_order_as_pep_440_says() {
        let ordered = [
            "0.9",
            "1.0.dev1",
            "1.0a1.dev1",
            "1.0a1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0+local",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.1",
            "1!0.1",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("1.0"), v("1.0.0"));
        assert!(v("1.0a1").is_prerelease() && v("1.0.dev0").is_prerelease());
        assert!(!v("1.0.post1").is_prerelease());
    }

    #[test]
    fn specifier_sets_match_like_pip() {
        let cases = [
            (">=1.0,<2", "1.5", true),
            (">=1.0,<2", "2.0", false),
            ("<2", "2.0a1", false),
            ("==1.*", "1.9.post3", true),
            ("==1.*", "2.0", false),
            ("!=1.5", "1.5.0", false),
            ("~=1.4.2", "1.4.9", true),
            ("~=1.4.2", "1.5.0", false),
            ("~=1.4", "1.9", true),
            (">1.0", "1.0.post1", false),
            (">1.0", "1.0.1", true),
            ("==1.0", "1.0+local", true),
            ("===1.0", "1.0", true),
            ("", "3", true),
        ];
        for (set, version, expected) in cases {
            let set = SpecifierSet::parse(set).unwrap();
            assert_eq!(
                set.contains(&v(version), false),
                expected,
                "{set:?} ∋ {version}"
            );
        }
    }

    #[test]
    fn pre_releases_match_only_when_asked_or_named() {
        let any = SpecifierSet::parse("").unwrap();
        assert!(!any.contains(&v("2.0b1"), false));
        assert!(any.contains(&v("2.0b1"), true));
        let named = SpecifierSet::parse(">=2.0b1").unwrap();
        assert!(named.contains(&v("2.0b2"), false));
    }

    #[test]
    fn bad_specifiers_say_why() {
        assert!(
            SpecifierSet::parse("1.0")
                .unwrap_err()
                .contains("comparison operator")
        );
        assert!(
            SpecifierSet::parse("~=1")
                .unwrap_err()
                .contains("two release numbers")
        );
        assert!(SpecifierSet::parse(">=1.*").unwrap_err().contains(".*"));
    }
}
