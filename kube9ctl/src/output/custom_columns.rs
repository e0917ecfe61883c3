//! `-o custom-columns=HEADER:PATH,...` and `-o custom-columns-file=FILE`, as kubectl prints
//! them: one row per object, each cell the path's results joined by commas (Go's rendering:
//! `map[k:v]`, `[a b]`), `<none>` when the path finds nothing.

use crate::output::jsonpath::{go_text, Template};
use crate::output::table;
use serde_json::Value;

/// One column: its header and the path its cells come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub header: String,
    pub path: Template,
}

/// `NAME:.metadata.name,NODE:.spec.nodeName` (paths in kubectl's relaxed forms).
pub fn parse_spec(spec: &str) -> Result<Vec<Column>, String> {
    if spec.trim().is_empty() {
        return Err("custom-columns format specified but no custom columns given".into());
    }
    spec.split(',')
        .map(|part| {
            let Some((header, path)) = part.split_once(':') else {
                return Err(format!(
                    "unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"
                ));
            };
            column(header, path)
        })
        .collect()
}

/// A custom-columns file: headers on the first line, their paths on the second, separated by
/// white space.
pub fn parse_file(text: &str) -> Result<Vec<Column>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (Some(headers), Some(paths)) = (lines.next(), lines.next()) else {
        return Err("expected two lines: the headers, then their paths".into());
    };
    let headers: Vec<&str> = headers.split_whitespace().collect();
    let paths: Vec<&str> = paths.split_whitespace().collect();
    if headers.len() != paths.len() {
        return Err(format!(
            "number of headers ({}) does not match number of paths ({})",
            headers.len(),
            paths.len()
        ));
    }
    headers
        .iter()
        .zip(&paths)
        .map(|(header, path)| column(header, path))
        .collect()
}

fn column(header: &str, path: &str) -> Result<Column, String> {
    let path = Template::relaxed(path).map_err(|e| format!("column {header:?}: {e}"))?;
    Ok(Column {
        header: header.to_string(),
        path,
    })
}

/// The table for `items` (each an object's JSON view).
pub fn render(columns: &[Column], items: &[Value], no_headers: bool) -> Result<String, String> {
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let mut row = Vec::with_capacity(columns.len());
        for column in columns {
            let values = column.path.results(item).map_err(|e| e.to_string())?;
            row.push(if values.is_empty() {
                "<none>".to_string()
            } else {
                values.iter().map(go_text).collect::<Vec<_>>().join(",")
            });
        }
        rows.push(row);
    }
    let headers: Vec<String> = columns.iter().map(|c| c.header.clone()).collect();
    Ok(table::render_rows(
        (!no_headers).then_some(&headers[..]),
        rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> Vec<Value> {
        vec![
            json!({"metadata": {"name": "web", "labels": {"app": "web"}},
                   "spec": {"nodeName": "n1", "containers": [{"image": "nginx"}, {"image": "envoy"}]}}),
            json!({"metadata": {"name": "queued"},
                   "spec": {"nodeName": "", "containers": [{"image": "busybox"}]}}),
        ]
    }

    #[test]
    fn columns_take_paths_in_every_relaxed_form() {
        let columns =
            parse_spec("NAME:.metadata.name,NODE:spec.nodeName,IMAGES:{.spec.containers[*].image}")
                .unwrap();
        assert_eq!(columns.len(), 3);
        assert_eq!(
            render(&columns, &pods(), false).unwrap(),
            "NAME     NODE   IMAGES\n\
             web      n1     nginx,envoy\n\
             queued          busybox\n"
        );
    }

    #[test]
    fn missing_values_are_none_and_maps_print_as_go_does() {
        let columns = parse_spec("NAME:.metadata.name,LABELS:.metadata.labels,X:.nope").unwrap();
        assert_eq!(
            render(&columns, &pods(), true).unwrap(),
            "web      map[app:web]   <none>\n\
             queued   <none>         <none>\n"
        );
    }

    #[test]
    fn a_file_has_headers_then_paths() {
        let columns = parse_file("NAME   NODE\n.metadata.name   .spec.nodeName\n").unwrap();
        assert_eq!(
            columns,
            parse_spec("NAME:.metadata.name,NODE:.spec.nodeName").unwrap()
        );
        assert!(parse_file("NAME NODE\n.metadata.name\n")
            .unwrap_err()
            .contains("does not match"));
        assert!(parse_file("NAME\n").is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(parse_spec("")
            .unwrap_err()
            .contains("no custom columns given"));
        assert!(parse_spec("NAME")
            .unwrap_err()
            .contains("expected <header>:<json-path-expr>"));
        assert!(parse_spec("NAME:.metadata.name,NODE").is_err());
        assert!(parse_spec("NAME:.items[").unwrap_err().contains("NAME"));
        assert!(parse_spec("NAME:").is_err());
    }
}
