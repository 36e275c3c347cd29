//! Multi-row statements, cut to a size that travels in one piece.
//!
//! sqlx 0.9 opens its database sockets with Nagle's algorithm on (0.8 turned it off; the fix,
//! sqlx pull request 4336, is not released yet). A statement that the kernel sends in more than
//! one piece then has its last piece held back until the server acknowledges the first, and the
//! server delays that acknowledgement by 40 ms. Measured here against Postgres on loopback: an
//! insert of up to about 16 KB (the socket's initial send buffer, `net.ipv4.tcp_wmem`) took
//! under 1 ms, one of 16.5 KB or more 43–47 ms, whatever its row count; a 127-row insert of
//! notifications (about 60 KB) took 45 ms, of which Postgres needed 2. Cutting multi-row
//! statements at [`STATEMENT_BYTES`] keeps each in one piece, at the cost of a round trip per
//! cut (well under a millisecond). When sqlx sets `TCP_NODELAY` again, the budget can grow.

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
        let items: Vec<usize> = (0..100)
            .map(|i| if i == 50 { 100_000 } else { 1000 })
            .collect();
        let runs: Vec<&[usize]> = chunks(&items, |&b| b).collect();
        assert_eq!(runs.concat(), items);
        for run in &runs {
            assert!(run.len() == 1 || run.iter().map(|b| b + 64).sum::<usize>() <= STATEMENT_BYTES);
        }
        // An item larger than the budget goes alone.
        assert!(runs.iter().any(|r| r == &[100_000]));
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
