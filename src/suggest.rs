//! "Did you mean ...?" for commands, options and provider names typed slightly wrong.

/// The candidate closest to `typed`, if it is close enough to be what was meant: within
/// a third of its length (at least 1, at most 3 edits), or `typed` is a prefix of it.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_lower = typed.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let d = if c.starts_with(&typed_lower) && typed_lower.len() >= 3 {
                0
            } else {
                // Insertions, deletions, substitutions and swaps of two neighbouring
                // letters ("strat" is one edit from "start").
                strsim::osa_distance(&typed_lower, c)
            };
            (d, c)
        })
        .filter(|(d, c)| *d <= (c.chars().count() / 3).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `" (did you mean \"x\"?)"`, to follow the word that was not understood, or nothing.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(typed, candidates)
        .map(|c| format!(" (did you mean \"{c}\"?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_words_are_suggested_and_far_ones_not() {
        let providers = [
            "postgresql",
            "postgresql_supabase",
            "mysql",
            "redis",
            "mongodb",
        ];
        assert_eq!(closest("postgres", providers), Some("postgresql"));
        assert_eq!(closest("mysq", providers), Some("mysql"));
        assert_eq!(closest("mongo", providers), Some("mongodb"));
        assert_eq!(closest("oracle", providers), None);
        assert_eq!(
            closest("--secert", ["--secret", "--help"]),
            Some("--secret")
        );
        assert_eq!(closest("strat", ["start", "stop", "status"]), Some("start"));
        assert_eq!(closest("stpo", ["start", "stop", "status"]), Some("stop"));
    }
}
