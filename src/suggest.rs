//! "Did you mean ...?" for commands, options and provider names typed slightly wrong.

/// Edit distance between two short words: insertions, deletions, substitutions and
/// swaps of two neighbouring letters ("strat" is one edit from "start").
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

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
                distance(&typed_lower, c)
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
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
