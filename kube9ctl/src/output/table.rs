//! kubectl-like tables: no borders, left-aligned, three spaces between columns.

use comfy_table::{presets::NOTHING, CellAlignment, Table};

/// Renders `rows` under `headers`, one line each, ending in a newline.
pub fn render(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    render_indented(headers, rows, "")
}

/// Like [`render`], each line prefixed with `indent` (for `describe` sections).
pub fn render_indented(headers: &[&str], rows: Vec<Vec<String>>, indent: &str) -> String {
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    layout(Some(&headers), rows, indent)
}

/// Like [`render`], the header line left out when `headers` is `None` (`--no-headers`: the
/// columns are as wide as their cells alone).
pub fn render_rows(headers: Option<&[String]>, rows: Vec<Vec<String>>) -> String {
    layout(headers, rows, "")
}

/// A table's header and rows, before they are laid out (so `get` can add columns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Rows {
    pub fn new(headers: &[&str], rows: Vec<Vec<String>>) -> Self {
        Rows {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
        }
    }

    /// Laid out, with its header line unless `no_headers`.
    pub fn text(self, no_headers: bool) -> String {
        let headers = (!no_headers).then_some(&self.headers[..]);
        render_rows(headers, self.rows)
    }
}

fn layout(headers: Option<&[String]>, rows: Vec<Vec<String>>, indent: &str) -> String {
    let mut table = Table::new();
    table.load_preset(NOTHING).force_no_tty();
    if let Some(headers) = headers {
        table.set_header(headers.to_vec());
    }
    for row in rows {
        table.add_row(row);
    }
    let last = table.column_count().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 3 }));
        column.set_cell_alignment(CellAlignment::Left);
    }
    let mut out = String::new();
    for line in table.lines() {
        let line = line.trim_end();
        // The NOTHING preset still draws the header separator, as blanks.
        if !line.is_empty() {
            out.push_str(indent);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `<none>` for an empty cell, as kubectl does.
pub fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_plain_columns() {
        let text = render(
            &["NAME", "STATUS", "AGE"],
            vec![
                vec!["web".into(), "Running".into(), "5s".into()],
                vec!["database-0".into(), "Pending".into(), "3m".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME         STATUS    AGE\n\
             web          Running   5s\n\
             database-0   Pending   3m\n"
        );
    }

    #[test]
    fn an_indent_prefixes_every_line() {
        let text = render_indented(&["A", "B"], vec![vec!["1".into(), "".into()]], "  ");
        assert_eq!(text, "  A   B\n  1\n");
    }

    #[test]
    fn without_headers_columns_are_as_wide_as_their_cells() {
        let rows = Rows::new(
            &["NAME", "STATUS"],
            vec![vec!["a".into(), "Running".into()]],
        );
        assert_eq!(rows.clone().text(false), "NAME   STATUS\na      Running\n");
        assert_eq!(rows.text(true), "a   Running\n");
    }
}
