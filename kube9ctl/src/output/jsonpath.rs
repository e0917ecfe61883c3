//! kubectl's JSONPath templates, for `-o jsonpath=`, `-o custom-columns=` and `--sort-by`.
//!
//! This is kubectl's template language (client-go's `util/jsonpath`), not RFC 9535 JSONPath:
//! plain text around `{...}` actions, `{range ...}`/`{end}` loops, quoted text inside actions
//! (`{"\t"}`), `$` optional, and the evaluation rules kubectl follows:
//!
//! - an action's results are printed separated by one space; maps and lists print as compact
//!   JSON, strings bare, `null` as `null`;
//! - a missing field is no result (kubectl's `--allow-missing-template-keys`, on by default);
//!   an index out of bounds is an error;
//! - `['a.b']` is the path `.a.b` (escape the dot, `['a\.b']`, for a key with a dot in it);
//! - `[a, b]` is a union: every result of `a`, then every result of `b`;
//! - `..name` looks for `name` in the value and every map and list below it, depth first;
//! - `[?(@.x == "y")]` keeps the elements of a list whose `@.x` compares true
//!   (`==`, `!=`, `<`, `>`, `<=`, `>=`, or no operator for "exists").
//!
//! No maintained crate implements this syntax (the Rust JSONPath crates implement RFC 9535 or
//! Goessner's JSONPath, without template text, `range` or kubectl's printing), hence this module.

use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Action(Vec<Step>),
    Range(Vec<Step>, Vec<Segment>),
}

#[derive(Debug, Clone)]
enum Step {
    /// `.name`; an empty name is the value itself (`{.}`).
    Field(String),
    /// `.*`, `[*]`.
    Wildcard,
    /// `[i]`, `[start:end:step]`.
    Slice(Slice),
    /// `..`: the value and every map and list below it.
    Recursive,
    /// `[a, b]`.
    Union(Vec<Vec<Step>>),
    /// `[?(left op right)]`.
    Filter(Box<Filter>),
    /// `"text"`, `5`, `true`: a value of its own, whatever the input.
    Literal(Value),
}

#[derive(Debug, Clone, Copy)]
struct Slice {
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
    /// `[i]` rather than a slice: its end is `start + 1`.
    single: bool,
}

#[derive(Debug, Clone)]
struct Filter {
    left: Vec<Step>,
    op: Op,
    right: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exists,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// A template that does not parse, or an evaluation that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(message: impl Into<String>) -> Result<T, Error> {
    Err(Error(message.into()))
}

impl Template {
    /// Parses a template: `{.items[*].metadata.name}`, `{range .items[*]}{.x}{"\n"}{end}`.
    pub fn parse(source: &str) -> Result<Template, Error> {
        let mut stack: Vec<(Vec<Step>, Vec<Segment>)> = Vec::new();
        let mut current: Vec<Segment> = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            let Some(open) = rest.find('{') else {
                current.push(Segment::Text(rest.to_string()));
                break;
            };
            if open > 0 {
                current.push(Segment::Text(rest[..open].to_string()));
            }
            let close = action_end(&rest[open..]).ok_or_else(|| Error("unclosed action".into()))?;
            let action = rest[open + 1..open + close].trim();
            rest = &rest[open + close + 1..];
            if action == "end" {
                let Some((path, outer)) = stack.pop() else {
                    return err("not in range, nothing to end");
                };
                let body = std::mem::replace(&mut current, outer);
                current.push(Segment::Range(path, body));
            } else if let Some(path) = action
                .strip_prefix("range")
                .filter(|p| p.is_empty() || p.starts_with(char::is_whitespace))
            {
                let path = parse_path(path.trim())?;
                stack.push((path, std::mem::take(&mut current)));
            } else {
                current.push(Segment::Action(parse_path(action)?));
            }
        }
        if !stack.is_empty() {
            return err("unclosed range: {range ...} needs an {end}");
        }
        Ok(Template {
            source: source.to_string(),
            segments: current,
        })
    }

    /// kubectl's relaxed form, for custom columns and `--sort-by`: `.a.b`, `a.b`, `{.a.b}` and
    /// `{a.b}` all mean `{.a.b}`.
    pub fn relaxed(path: &str) -> Result<Template, Error> {
        let path = path.trim();
        let inner = match path.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(inner) => inner,
            None => path,
        };
        let inner = inner.strip_prefix('.').unwrap_or(inner);
        if inner.is_empty() || inner.contains(['{', '}']) {
            return err(format!(
                "unexpected path string {path:?}, expected a 'name1.name2' or '.name1.name2' or \
                 '{{name1.name2}}' or '{{.name1.name2}}'"
            ));
        }
        Template::parse(&format!("{{.{inner}}}"))
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The template applied to `data`, as kubectl prints it.
    pub fn render(&self, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        self.walk(
            &self.segments,
            data,
            &mut |results, out: &mut String| {
                let texts: Vec<String> = results.iter().map(|v| text(v)).collect();
                out.push_str(&texts.join(" "));
            },
            &mut out,
        )
        .map_err(|e| self.failed(e))?;
        Ok(out)
    }

    /// `-o jsonpath-as-json`: each action's results as a JSON array (kubectl's four-space
    /// indent).
    pub fn render_json(&self, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        self.walk(
            &self.segments,
            data,
            &mut |results, out: &mut String| {
                let array = Value::Array(results.iter().map(|v| v.clone().into_owned()).collect());
                out.push_str(&pretty4(&array));
                out.push('\n');
            },
            &mut out,
        )
        .map_err(|e| self.failed(e))?;
        Ok(out)
    }

    /// Every result of the template's actions on `data`, in order (text segments included).
    pub fn results(&self, data: &Value) -> Result<Vec<Value>, Error> {
        let mut all = Vec::new();
        self.walk(
            &self.segments,
            data,
            &mut |results, all: &mut Vec<Value>| {
                all.extend(results.iter().map(|v| v.clone().into_owned()));
            },
            &mut all,
        )
        .map_err(|e| self.failed(e))?;
        Ok(all)
    }

    fn failed(&self, e: Error) -> Error {
        Error(format!("error executing jsonpath {:?}: {e}", self.source))
    }

    fn walk<O>(
        &self,
        segments: &[Segment],
        data: &Value,
        emit: &mut dyn FnMut(&[Cow<'_, Value>], &mut O),
        out: &mut O,
    ) -> Result<(), Error> {
        for segment in segments {
            match segment {
                Segment::Text(t) => emit(&[Cow::Owned(Value::String(t.clone()))], out),
                Segment::Action(steps) => {
                    let results = eval(vec![Cow::Borrowed(data)], steps)?;
                    emit(&results, out);
                }
                Segment::Range(steps, body) => {
                    for item in eval(vec![Cow::Borrowed(data)], steps)? {
                        match item {
                            Cow::Borrowed(item) => self.walk(body, item, emit, out)?,
                            Cow::Owned(item) => self.walk(body, &item, emit, out)?,
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The index of the `}` closing the action that `s` starts with (`s[0] == '{'`), skipping
/// quoted text.
fn action_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '}' => return Some(i),
            None => {}
        }
    }
    None
}

/// Characters that end a field name (kubectl's terminators).
fn is_terminator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}')
}

/// One action's expression: `.a.b[0]`, `..name`, `@.x`, `"text"`, `[?(...)]`, ...
fn parse_path(text: &str) -> Result<Vec<Step>, Error> {
    let chars: Vec<char> = text.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '$' | '@' => i += 1,
            '.' if chars.get(i + 1) == Some(&'.') => {
                steps.push(Step::Recursive);
                i += 2;
                // `..name`: the field follows without a dot of its own.
                if chars.get(i).is_some_and(|c| !is_terminator(*c)) {
                    let (name, next) = field_name(&chars, i);
                    steps.push(field_step(name));
                    i = next;
                }
            }
            '.' => {
                let (name, next) = field_name(&chars, i + 1);
                steps.push(field_step(name));
                i = next;
            }
            '[' => {
                let (step, next) = parse_bracket(&chars, i, text)?;
                steps.push(step);
                i = next;
            }
            '"' | '\'' => {
                let (literal, next) = parse_quoted(&chars, i)?;
                steps.push(Step::Literal(Value::String(literal)));
                i = next;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let number: String = chars[start..i].iter().collect();
                let value = if let Ok(n) = number.parse::<i64>() {
                    Value::from(n)
                } else if let Ok(f) = number.parse::<f64>() {
                    Value::from(f)
                } else {
                    return err(format!("invalid number {number:?}"));
                };
                steps.push(Step::Literal(value));
            }
            c if c.is_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "true" => steps.push(Step::Literal(Value::Bool(true))),
                    "false" => steps.push(Step::Literal(Value::Bool(false))),
                    "null" => steps.push(Step::Literal(Value::Null)),
                    "range" | "end" => {
                        return err(format!("{{{word}}} must stand alone in its action"))
                    }
                    _ => {
                        return err(format!(
                            "unrecognized identifier {word:?} in {text:?} (fields start with \
                             a dot: .{word})"
                        ))
                    }
                }
            }
            _ => return err(format!("unrecognized character {c:?} in {text:?}")),
        }
    }
    Ok(steps)
}

fn field_step(name: String) -> Step {
    if name == "*" {
        Step::Wildcard
    } else {
        Step::Field(name)
    }
}

/// A field name from `start` up to a terminator; `\x` keeps `x` (`kubernetes\.io/hostname`).
fn field_name(chars: &[char], start: usize) -> (String, usize) {
    let mut name = String::new();
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                name.push(chars[i + 1]);
                i += 2;
            }
            c if is_terminator(c) => break,
            c => {
                name.push(c);
                i += 1;
            }
        }
    }
    (name, i)
}

/// A quoted string starting at `start` (`"` or `'`), with Go's escapes; returns the text and
/// the index after the closing quote.
fn parse_quoted(chars: &[char], start: usize) -> Result<(String, usize), Error> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((out, i + 1));
        }
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = chars.get(i + 1) else { break };
        i += 2;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' | '"' | '\'' | '/' => out.push(e),
            'x' | 'u' | 'U' => {
                let len = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.iter().skip(i).take(len).collect();
                let code = (hex.len() == len)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| Error(format!("invalid escape \\{e}{hex}")))?;
                out.push(code);
                i += len;
            }
            _ => return err(format!("invalid escape \\{e} in a quoted string")),
        }
    }
    err("unterminated quoted string")
}

/// `[...]` starting at `start`: a filter, wildcard, union, key or slice.
fn parse_bracket(chars: &[char], start: usize, text: &str) -> Result<(Step, usize), Error> {
    let rest: String = chars[start..].iter().collect();
    if rest.starts_with("[?(") {
        let close = find_outside_quotes(&chars[start..], &[')', ']'])
            .ok_or_else(|| Error(format!("unclosed filter in {text:?}: expected )]")))?;
        let inner: String = chars[start + 3..start + close].iter().collect();
        return Ok((
            Step::Filter(Box::new(parse_filter(&inner)?)),
            start + close + 2,
        ));
    }
    let close = find_outside_quotes(&chars[start..], &[']'])
        .ok_or_else(|| Error(format!("unterminated array in {text:?}")))?;
    let inner: String = chars[start + 1..start + close].iter().collect();
    let next = start + close + 1;
    let inner = inner.trim();
    if inner == "*" {
        return Ok((Step::Wildcard, next));
    }
    let parts = split_outside_quotes(inner, ',');
    if parts.len() > 1 {
        let union = parts
            .iter()
            .map(|part| parse_path(&format!("[{}]", part.trim())))
            .collect::<Result<_, _>>()?;
        return Ok((Step::Union(union), next));
    }
    if let Some(key) = inner
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
    {
        // kubectl reads `['a.b']` as `.a.b`.
        let steps = parse_path(&format!(".{key}"))?;
        return Ok((
            if steps.len() == 1 {
                steps.into_iter().next().expect("one step")
            } else {
                Step::Union(vec![steps])
            },
            next,
        ));
    }
    Ok((Step::Slice(parse_slice(inner)?), next))
}

/// `i`, `start:end`, `start:end:step`, each part optional and maybe negative.
fn parse_slice(text: &str) -> Result<Slice, Error> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return err(format!("invalid array index {text:?}"));
    }
    let number = |s: &str| -> Result<Option<i64>, Error> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|_| Error(format!("invalid array index {text:?}")))
        }
    };
    let start = number(parts[0])?;
    if parts.len() == 1 {
        if start.is_none() {
            return err("invalid array index \"\"");
        }
        return Ok(Slice {
            start,
            end: None,
            step: None,
            single: true,
        });
    }
    Ok(Slice {
        start,
        end: number(parts[1])?,
        step: parts.get(2).map(|s| number(s)).transpose()?.flatten(),
        single: false,
    })
}

fn parse_filter(inner: &str) -> Result<Filter, Error> {
    let ops = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let chars: Vec<char> = inner.chars().collect();
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => continue,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if matches!(c, '=' | '!' | '<' | '>') => {
                let rest: String = chars[i..].iter().collect();
                let Some((symbol, op)) = ops.iter().find(|(s, _)| rest.starts_with(s)) else {
                    return err(format!("unrecognized filter operator in {inner:?}"));
                };
                let left: String = chars[..i].iter().collect();
                let right = &rest[symbol.len()..];
                if right.starts_with(['=', '!', '<', '>']) {
                    return err(format!("unrecognized filter operator in {inner:?}"));
                }
                return Ok(Filter {
                    left: parse_path(left.trim())?,
                    op: *op,
                    right: parse_path(right.trim())?,
                });
            }
            None => {}
        }
    }
    Ok(Filter {
        left: parse_path(inner.trim())?,
        op: Op::Exists,
        right: Vec::new(),
    })
}

/// The index in `chars` where `pattern` starts, outside quotes.
fn find_outside_quotes(chars: &[char], pattern: &[char]) -> Option<usize> {
    let mut quote: Option<char> = None;
    for i in 0..chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if chars[i..].starts_with(pattern) => return Some(i),
            None => {}
        }
    }
    None
}

fn split_outside_quotes(text: &str, at: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == at => {
                parts.push(String::new());
                continue;
            }
            None => {}
        }
        parts.last_mut().expect("one part").push(c);
    }
    parts
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

fn eval<'a>(mut values: Vec<Cow<'a, Value>>, steps: &[Step]) -> Result<Vec<Cow<'a, Value>>, Error> {
    for step in steps {
        values = eval_step(values, step)?;
    }
    Ok(values)
}

/// The children of a value borrowed from the document (literals have none).
fn borrowed<'a>(value: &Cow<'a, Value>) -> Option<&'a Value> {
    match value {
        Cow::Borrowed(v) => Some(v),
        Cow::Owned(_) => None,
    }
}

fn eval_step<'a>(values: Vec<Cow<'a, Value>>, step: &Step) -> Result<Vec<Cow<'a, Value>>, Error> {
    let mut out = Vec::new();
    match step {
        Step::Field(name) if name.is_empty() => return Ok(values),
        Step::Field(name) => {
            for value in &values {
                if let Some(Value::Object(map)) = borrowed(value) {
                    if let Some(v) = map.get(name) {
                        out.push(Cow::Borrowed(v));
                    }
                }
            }
        }
        Step::Wildcard => {
            for value in &values {
                match borrowed(value) {
                    Some(Value::Object(map)) => out.extend(map.values().map(Cow::Borrowed)),
                    Some(Value::Array(items)) => out.extend(items.iter().map(Cow::Borrowed)),
                    _ => {}
                }
            }
        }
        Step::Slice(slice) => {
            for value in &values {
                match borrowed(value) {
                    Some(Value::Array(items)) => {
                        out.extend(slice_of(items, *slice)?.into_iter().map(Cow::Borrowed));
                    }
                    Some(Value::Null) | None => {}
                    Some(other) => {
                        return err(format!("{} is not array or slice", type_name(other)))
                    }
                }
            }
        }
        Step::Recursive => {
            for value in &values {
                if let Some(v) = borrowed(value) {
                    descend(v, &mut out);
                }
            }
        }
        Step::Union(paths) => {
            for path in paths {
                out.extend(eval(values.clone(), path)?);
            }
        }
        Step::Filter(filter) => {
            for value in &values {
                match borrowed(value) {
                    Some(Value::Array(items)) => {
                        for item in items {
                            if filter.keeps(item)? {
                                out.push(Cow::Borrowed(item));
                            }
                        }
                    }
                    Some(Value::Null) | None => {}
                    Some(other) => {
                        return err(format!(
                            "{} is not array or slice and cannot be filtered",
                            type_name(other)
                        ))
                    }
                }
            }
        }
        Step::Literal(v) => out.push(Cow::Owned(v.clone())),
    }
    Ok(out)
}

/// `value` and every map and list below it, depth first (what `..` searches).
fn descend<'a>(value: &'a Value, out: &mut Vec<Cow<'a, Value>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push(Cow::Borrowed(value));
            for child in map.values() {
                descend(child, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            out.push(Cow::Borrowed(value));
            for child in items {
                descend(child, out);
            }
        }
        _ => {}
    }
}

/// kubectl's slice rules: negative indexes count from the end, an index out of bounds is an
/// error, an empty slice is not.
fn slice_of(items: &[Value], slice: Slice) -> Result<Vec<&Value>, Error> {
    let len = items.len() as i64;
    let mut start = slice.start.unwrap_or(0);
    if start < 0 {
        start += len;
    }
    let mut end = if slice.single {
        start + 1
    } else {
        match slice.end {
            Some(e) if e < 0 => e + len,
            Some(e) => e,
            None => len,
        }
    };
    if !slice.single {
        end = end.min(len);
    }
    if end == start {
        return Ok(Vec::new());
    }
    if start < 0 || start >= len {
        return err(format!(
            "array index out of bounds: index {}, length {len}",
            slice.start.unwrap_or(0)
        ));
    }
    if end < 0 || end > len {
        return err(format!(
            "array index out of bounds: index {}, length {len}",
            end - 1
        ));
    }
    if start > end {
        return err(format!(
            "starting index {start} is greater than ending index {end}"
        ));
    }
    let step = slice.step.unwrap_or(1);
    if step <= 0 {
        return err("step must be > 0");
    }
    Ok(items[start as usize..end as usize]
        .iter()
        .step_by(step as usize)
        .collect())
}

impl Filter {
    fn keeps(&self, item: &Value) -> Result<bool, Error> {
        let lefts = eval(vec![Cow::Borrowed(item)], &self.left)?;
        if self.op == Op::Exists {
            return Ok(!lefts.is_empty());
        }
        let rights = eval(vec![Cow::Borrowed(item)], &self.right)?;
        let (left, right) = match (lefts.as_slice(), rights.as_slice()) {
            ([], _) | (_, []) => return Ok(false),
            ([l], [r]) => (l, r),
            _ => return err("can only compare one element at a time"),
        };
        let ordering = compare(left, right);
        Ok(match self.op {
            Op::Eq => ordering == Some(Ordering::Equal),
            Op::Ne => ordering != Some(Ordering::Equal),
            Op::Lt => ordering == Some(Ordering::Less),
            Op::Gt => ordering == Some(Ordering::Greater),
            Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            Op::Exists => unreachable!("handled above"),
        })
    }
}

/// How two values compare: numbers as numbers, strings as strings, booleans and nulls by
/// equality; values of different types do not compare.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (x, y) if x == y => Some(Ordering::Equal),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

/// One result as kubectl's jsonpath printer writes it: strings bare, maps and lists as compact
/// JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// One result as kubectl's custom-columns printer writes it (Go's `fmt.Sprint`): `map[k:v]`,
/// `[a b]`, `<nil>`.
pub fn go_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_text).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_text(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

fn pretty4(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    v.serialize(&mut ser).expect("a JSON value serializes");
    String::from_utf8(buf).expect("JSON is UTF-8")
}

/// kubectl's order for `--sort-by`: numbers by value, strings naturally (`pod2` before
/// `pod10`), other values by their JSON text.
pub fn sort_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => natural(x, y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Natural order: runs of digits compare as numbers.
pub fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|c| **c == b'0').count();
    &digits[zeros.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The input of the kubectl documentation's JSONPath page ("JSONPath Support").
    fn sample() -> Value {
        serde_json::from_str(
            r#"{
              "kind": "List",
              "items":[
                {
                  "kind":"None",
                  "metadata":{
                    "name":"127.0.0.1",
                    "labels":{
                      "kubernetes.io/hostname":"127.0.0.1"
                    }
                  },
                  "status":{
                    "capacity":{"cpu":"4"},
                    "addresses":[{"type": "LegacyHostIP", "address":"127.0.0.1"}]
                  }
                },
                {
                  "kind":"None",
                  "metadata":{"name":"127.0.0.2"},
                  "status":{
                    "capacity":{"cpu":"8"},
                    "addresses":[
                      {"type": "LegacyHostIP", "address":"127.0.0.2"},
                      {"type": "another", "address":"127.0.0.3"}
                    ]
                  }
                }
              ],
              "users":[
                {
                  "name": "myself",
                  "user": {}
                },
                {
                  "name": "e2e",
                  "user": {"username": "admin", "password": "secret"}
                }
              ]
            }"#,
        )
        .unwrap()
    }

    fn run(template: &str) -> String {
        Template::parse(template)
            .unwrap_or_else(|e| panic!("{template}: {e}"))
            .render(&sample())
            .unwrap_or_else(|e| panic!("{template}: {e}"))
    }

    /// The documentation's table, row by row. Two of its results are written in an older
    /// printer's words, and kubectl (client-go's jsonpath `PrintResults`) prints differently
    /// today; those are marked.
    #[test]
    fn the_documented_examples() {
        assert_eq!(run("kind is {.kind}"), "kind is List");
        assert_eq!(
            serde_json::from_str::<Value>(&run("{@}")).unwrap(),
            sample(),
            "{{@}} is the same as input"
        );
        assert_eq!(run("{.kind}"), "List");
        assert_eq!(run("{['kind']}"), "List");
        assert_eq!(run("{..name}"), "127.0.0.1 127.0.0.2 myself e2e");
        // Documented as `[127.0.0.1 127.0.0.2]`: kubectl prints the results space-separated.
        assert_eq!(run("{.items[*].metadata.name}"), "127.0.0.1 127.0.0.2");
        assert_eq!(run("{.users[0].name}"), "myself");
        // Documented as `127.0.0.1 127.0.0.2 map[cpu:4] map[cpu:8]` (Go's fmt); kubectl prints
        // maps as JSON.
        assert_eq!(
            run("{.items[*]['metadata.name', 'status.capacity']}"),
            r#"127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}"#
        );
        assert_eq!(run(r#"{.users[?(@.name=="e2e")].user.password}"#), "secret");
        // Documented as `[127.0.0.1, map[cpu:4]] [127.0.0.2, map[cpu:8]]`, as above.
        assert_eq!(
            run("{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}"),
            r#"[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] "#
        );
        assert_eq!(
            run(r"{range .items[*]}{.metadata.name}{'\t'}{end}"),
            "127.0.0.1\t127.0.0.2\t"
        );
        assert_eq!(
            run(r"{.items[0].metadata.labels.kubernetes\.io/hostname}"),
            "127.0.0.1"
        );
    }

    #[test]
    fn the_examples_the_brief_names() {
        let first: Value = serde_json::from_str(&run("{.items[0]}")).unwrap();
        assert_eq!(first, sample()["items"][0]);
        let last: Value = serde_json::from_str(&run("{.items[-1:]}")).unwrap();
        assert_eq!(last, sample()["items"][1]);
        assert_eq!(
            run(r#"{.items[?(@.metadata.name=="127.0.0.1")].status.capacity}"#),
            r#"{"cpu":"4"}"#
        );
        assert_eq!(run(r#"{"{"}"#), "{");
        assert_eq!(run("{$.kind}"), "List");
        assert_eq!(run("{.}"), run("{@}"));
    }

    #[test]
    fn slices_and_negative_indexes() {
        assert_eq!(run("{.users[-1].name}"), "e2e");
        assert_eq!(run("{.users[0:1].name}"), "myself");
        assert_eq!(run("{.users[:].name}"), "myself e2e");
        assert_eq!(run("{.users[::2].name}"), "myself");
        assert_eq!(run("{.users[1:].name}"), "e2e");
        assert_eq!(
            run("{.items[*].status.addresses[*].address}"),
            "127.0.0.1 127.0.0.2 127.0.0.3"
        );
        assert_eq!(
            run("{.items[1].status.addresses[0,1].type}"),
            "LegacyHostIP another"
        );
        let e = Template::parse("{.users[5].name}")
            .unwrap()
            .render(&sample())
            .unwrap_err();
        assert!(
            e.0.contains("array index out of bounds: index 5, length 2"),
            "{e}"
        );
        assert!(e.0.contains("{.users[5].name}"), "{e}");
    }

    #[test]
    fn missing_fields_print_nothing() {
        assert_eq!(run("{.nope}"), "");
        assert_eq!(run("{.items[*].spec.nodeName}"), "");
        assert_eq!(run("a{.nope}b"), "ab");
    }

    #[test]
    fn filters_compare_numbers_strings_and_existence() {
        let data = json!({"items": [
            {"name": "a", "n": 1, "ready": true},
            {"name": "b", "n": 5},
            {"name": "c", "n": 10, "ready": false},
        ]});
        let render = |t: &str| Template::parse(t).unwrap().render(&data).unwrap();
        assert_eq!(render("{.items[?(@.n > 2)].name}"), "b c");
        assert_eq!(render("{.items[?(@.n<=5)].name}"), "a b");
        assert_eq!(render("{.items[?(@.n != 5)].name}"), "a c");
        assert_eq!(render("{.items[?(@.name == 'c')].n}"), "10");
        assert_eq!(render("{.items[?(@.ready)].name}"), "a c");
        assert_eq!(render("{.items[?(@.ready == true)].name}"), "a");
        assert_eq!(render(r#"{.items[?(@.name=="zz")].name}"#), "");
    }

    #[test]
    fn nested_ranges_and_text() {
        let data = json!({"items": [
            {"metadata": {"name": "web"}, "spec": {"containers": [{"image": "nginx"}, {"image": "envoy"}]}},
            {"metadata": {"name": "db"}, "spec": {"containers": [{"image": "postgres"}]}},
        ]});
        let t = Template::parse(
            r#"{range .items[*]}{.metadata.name}:{range .spec.containers[*]} {.image}{end}{"\n"}{end}"#,
        )
        .unwrap();
        assert_eq!(t.render(&data).unwrap(), "web: nginx envoy\ndb: postgres\n");
        let t = Template::parse("{.items[0].spec.containers[*].image}").unwrap();
        assert_eq!(t.render(&data).unwrap(), "nginx envoy");
    }

    #[test]
    fn scalars_print_as_kubectl_prints_them() {
        let data = json!({"a": 3, "b": 1.5, "c": true, "d": null, "e": ["x", 1], "f": {}});
        let render = |t: &str| Template::parse(t).unwrap().render(&data).unwrap();
        assert_eq!(render("{.a} {.b} {.c} {.d}"), "3 1.5 true null");
        assert_eq!(render("{.e}"), r#"["x",1]"#);
        assert_eq!(render("{.f}"), "{}");
        assert_eq!(
            go_text(&json!({"cpu": "4", "n": [1, 2]})),
            "map[cpu:4 n:[1 2]]"
        );
        assert_eq!(go_text(&Value::Null), "<nil>");
    }

    #[test]
    fn jsonpath_as_json_wraps_each_action() {
        let t = Template::parse("{.users[*].name}").unwrap();
        assert_eq!(
            t.render_json(&sample()).unwrap(),
            "[\n    \"myself\",\n    \"e2e\"\n]\n"
        );
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        for (template, words) in [
            ("{.items[*]", "unclosed action"),
            ("{range .items[*]}{.x}", "unclosed range"),
            ("{.x}{end}", "not in range"),
            ("{.items[abc]}", "invalid array index"),
            ("{.items[0}", "unterminated array"),
            ("{items}", "unrecognized identifier"),
            (r#"{"abc}"#, "unclosed action"),
            (r#"{.a[?(@.b = "x")]}"#, "unrecognized filter operator"),
            ("{.a[?(@.b == 1}", "unclosed filter"),
            ("{#}", "unrecognized character"),
            (r"{'\q'}", "invalid escape"),
        ] {
            let e = Template::parse(template).unwrap_err();
            assert!(e.0.contains(words), "{template}: {e}");
        }
    }

    #[test]
    fn relaxed_paths_take_kubectls_four_forms() {
        let data = json!({"metadata": {"name": "web"}});
        for path in [
            ".metadata.name",
            "metadata.name",
            "{.metadata.name}",
            "{metadata.name}",
        ] {
            let t = Template::relaxed(path).unwrap();
            assert_eq!(t.render(&data).unwrap(), "web", "{path}");
        }
        assert!(Template::relaxed("").is_err());
        assert!(Template::relaxed("{.a}{.b}").is_err());
    }

    #[test]
    fn natural_order_compares_numbers_inside_strings() {
        assert_eq!(natural("pod2", "pod10"), Ordering::Less);
        assert_eq!(natural("pod10", "pod2"), Ordering::Greater);
        assert_eq!(natural("a", "b"), Ordering::Less);
        assert_eq!(natural("a01", "a1"), Ordering::Equal);
        assert_eq!(natural("", "a"), Ordering::Less);
        assert_eq!(
            sort_order(
                &json!("2026-01-02T00:00:00Z"),
                &json!("2026-01-10T00:00:00Z")
            ),
            Ordering::Less
        );
        assert_eq!(sort_order(&json!(9), &json!(10)), Ordering::Less);
    }
}
