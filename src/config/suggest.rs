//! "Did you mean": the nearest of the valid names to a misspelled one, for
//! errors on unknown keys (policy files, repository options).

/// Levenshtein distance between two short names.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The valid name nearest to `word`, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    valid
        .into_iter()
        .map(|k| (distance(word, k), k))
        .min()
        .filter(|(d, k)| *d <= 3 && *d < k.len().max(2))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_name() {
        assert_eq!(nearest("regoin", ["endpoint", "region"]), Some("region"));
        assert_eq!(nearest("rpoo", ["rpo", "rto", "name"]), Some("rpo"));
        assert_eq!(nearest("zzzzzzzz", ["rpo", "rto"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
