//! Multi-row statements, cut to a bounded size.
//!
//! One statement for a run of rows saves a round trip per row; the cut bounds a statement's
//! memory and keeps it under the database's limit of bound values. sqlx sets `TCP_NODELAY`
//! (0.9.1 and later; 0.9.0 held every statement over about 16 KB back 40 ms), and cuts 20
//! times larger than these measured no faster here (BENCHMARKS.md).

/// What one multi-row statement carries at most, roughly (its values, as estimated by the caller,
/// plus 64 bytes a row for the fixed-size columns and the protocol's framing).
pub const STATEMENT_BYTES: usize = 12 * 1024;
/// Rows one statement inserts at most, whatever their size (a statement binds at most 32,766
/// values on SQLite and 65,535 on Postgres; our rows have under 10 columns).
pub const STATEMENT_ROWS: usize = 1000;

/// Cuts `items` into runs whose estimated size (`bytes` of each, plus a little for its other
/// columns) stays under [`STATEMENT_BYTES`] and whose length stays under [`STATEMENT_ROWS`];
/// every run holds at least one item. Order is kept.
pub fn chunks<'a, T>(
    items: &'a [T],
    bytes: impl Fn(&T) -> usize + 'a,
) -> impl Iterator<Item = &'a [T]> + 'a {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut size = 0;
        let mut n = 0;
        while n < rest.len() && n < STATEMENT_ROWS {
            // Uuids, times and the protocol's length prefixes of a row.
            let row = bytes(&rest[n]) + 64;
            if n > 0 && size + row > STATEMENT_BYTES {
                break;
            }
            size += row;
            n += 1;
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

/// Ids one `IN (…)` list carries at most: a uuid costs about 26 bytes of a statement (20 bound,
/// 6 of text for its placeholder), so a list this long stays under [`STATEMENT_BYTES`].
pub const IDS_PER_STATEMENT: usize = 400;

/// Cuts a list of ids for `IN (…)` lists into runs of at most [`IDS_PER_STATEMENT`], so that a
/// lookup of many ids is a few statements that each travel in one piece. Order is kept.
pub fn ids<T>(ids: &[T]) -> std::slice::Chunks<'_, T> {
    ids.chunks(IDS_PER_STATEMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_the_order_and_stay_under_the_budget() {
        let (big, small) = (2 * STATEMENT_BYTES, STATEMENT_BYTES / 40);
        let items: Vec<usize> = (0..100)
            .map(|i| if i == 50 { big } else { small })
            .collect();
        let runs: Vec<&[usize]> = chunks(&items, |&b| b).collect();
        assert_eq!(runs.concat(), items);
        for run in &runs {
            assert!(run.len() == 1 || run.iter().map(|b| b + 64).sum::<usize>() <= STATEMENT_BYTES);
        }
        // An item larger than the budget goes alone.
        assert!(runs.iter().any(|r| r == &[big]));
        let small = vec![0u8; 2500];
        assert!(chunks(&small, |_| 0).all(|r| r.len() <= STATEMENT_ROWS));
        assert_eq!(chunks(&[] as &[u8], |_| 0).count(), 0);
    }

    #[test]
    fn id_lists_are_cut_under_the_budget() {
        let list: Vec<u32> = (0..1000).collect();
        let runs: Vec<&[u32]> = ids(&list).collect();
        assert_eq!(runs.concat(), list);
        assert!(runs.iter().all(|r| r.len() * 26 <= STATEMENT_BYTES));
        assert_eq!(runs.len(), 3);
    }
}
