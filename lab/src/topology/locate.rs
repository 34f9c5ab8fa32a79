//! Where in the file a path of keys is: the line an error points at.

/// One step of a path into the YAML document, for locating a line.
#[derive(Clone, Copy)]
pub(super) enum Step<'s> {
    Key(&'s str),
    Index(usize),
}

/// The lines (1-based) of the first two occurrences of `key` among the keys of the
/// block mapping that starts at line `from` (its keys at that line's indentation).
pub(super) fn duplicate_key_lines(src: &str, from: usize, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = src.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let start = from.checked_sub(1)?;
    let depth = indent(lines.get(start)?);
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate().skip(start) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') || indent(l) > depth {
            continue;
        }
        if indent(l) < depth {
            break;
        }
        let k = t
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if k == key {
            found.push(i + 1);
        }
    }
    match found[..] {
        [first, again, ..] => Some((first, again)),
        _ => None,
    }
}

/// Finds the line (1-based) of a path in block-style YAML by following indentation.
/// Flow collections are treated as values on their key's line; good enough to point a
/// user at the right place, which is all it is for.
pub(super) fn locate(src: &str, path: &[Step]) -> Option<usize> {
    let lines: Vec<&str> = src.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let meaningful = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    };
    // The block we search in: lines [start, end) deeper than `parent`.
    let (mut start, mut end, mut parent): (usize, usize, isize) = (0, lines.len(), -1);
    let mut found = None;
    for step in path {
        let mut hit = None;
        let mut item = 0usize;
        let mut item_indent: Option<usize> = None;
        for (i, l) in lines.iter().enumerate().take(end).skip(start) {
            if !meaningful(l) {
                continue;
            }
            let ind = indent(l) as isize;
            if ind <= parent {
                break;
            }
            let t = l.trim_start();
            match step {
                Step::Key(k) => {
                    let t = t.strip_prefix("- ").unwrap_or(t);
                    let key = t
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'');
                    if key == *k && t.contains(':') {
                        hit = Some((i, ind));
                        break;
                    }
                }
                Step::Index(n) => {
                    if t.starts_with("- ") || t == "-" {
                        let ii = *item_indent.get_or_insert(ind as usize);
                        if ind as usize == ii {
                            if item == *n {
                                hit = Some((i, ind));
                                break;
                            }
                            item += 1;
                        }
                    }
                }
            }
        }
        let (i, ind) = hit?;
        found = Some(i + 1);
        // The block of this key: following lines deeper than it; a list item's own
        // keys sit after "- ", so its block is anything deeper than the dash.
        let block_end = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, l)| meaningful(l) && indent(l) as isize <= ind)
            .map(|(j, _)| j)
            .unwrap_or(lines.len());
        parent = ind;
        // For list items and keys inline after "- ", search the item's line too.
        start = if matches!(step, Step::Index(_)) { i } else { i + 1 };
        end = block_end.min(end);
        if matches!(step, Step::Index(_)) {
            parent = ind - 1;
        }
    }
    found
}
