//! Statement syntax: splits a script into statements and reads the ksqlDB parts that
//! `sqlparser` has no grammar for — `CREATE STREAM name (cols) WITH (…)`, the heads of
//! `CREATE TABLE|STREAM … AS`, `WINDOW TUMBLING|HOPPING|SESSION (…)`, `EMIT CHANGES|FINAL`,
//! `DROP` — then hands the remaining `SELECT` tokens to `sqlparser`.
//!
//! Everything works on the tokenizer's output, which carries each token's line and column
//! in the original text, and removed clauses are cut out of the token list rather than out
//! of the text, so every error — ours or `sqlparser`'s — points into the statement exactly
//! as the user wrote it.

use sqlparser::ast::Query;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer};

use super::schema::SqlType;
use super::{KsqlDialect, Location, SqlError};
use crate::WindowSpec;
use crate::operator::EmitMode;

/// A name with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// The name (unquoted).
    pub value: String,
    /// Its position.
    pub loc: Location,
}

/// One `KEY = value` of a `WITH (…)` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// Upper-cased key.
    pub key: String,
    /// Value text (string literals unquoted).
    pub value: String,
    /// Position of the key.
    pub key_loc: Location,
    /// Position of the value.
    pub value_loc: Location,
}

/// A `WINDOW` clause.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowClause {
    /// The windows.
    pub spec: WindowSpec,
    /// `GRACE PERIOD n UNIT`, ms.
    pub grace_ms: Option<i64>,
    /// `RETENTION n UNIT`, ms.
    pub retention_ms: Option<i64>,
    /// Position of `WINDOW`.
    pub loc: Location,
}

/// Whether a `CREATE … AS SELECT` makes a table or a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `CREATE TABLE`.
    Table,
    /// `CREATE STREAM`.
    Stream,
}

/// One parsed statement.
#[derive(Debug)]
pub enum Statement {
    /// `CREATE STREAM name (col TYPE, …) WITH (…)`.
    CreateStream {
        /// Stream name.
        name: Name,
        /// Columns.
        columns: Vec<(Name, SqlType)>,
        /// `WITH` properties.
        properties: Vec<Property>,
    },
    /// `CREATE TABLE|STREAM name [WITH (…)] AS SELECT … [WINDOW …] … [EMIT …]`.
    CreateAs {
        /// Table or stream.
        relation: Relation,
        /// Its name.
        name: Name,
        /// `WITH` properties.
        properties: Vec<Property>,
        /// The `SELECT`.
        query: Box<Query>,
        /// Position of `SELECT`.
        select_loc: Location,
        /// The `WINDOW` clause.
        window: Option<WindowClause>,
        /// The `EMIT` clause and its position.
        emit: Option<(EmitMode, Location)>,
    },
    /// `DROP TABLE|STREAM [IF EXISTS] name`.
    Drop {
        /// Name.
        name: Name,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// A `SELECT` on its own: a pull query.
    Select {
        /// The query.
        query: Box<Query>,
        /// Position of `SELECT`.
        select_loc: Location,
        /// `EMIT` clause, which a pull query must not have.
        emit: Option<(EmitMode, Location)>,
    },
}

/// One statement of a script: its own text and its parse.
#[derive(Debug)]
pub struct ParsedStatement {
    /// The statement's source text, without the terminating `;`.
    pub text: String,
    /// The statement.
    pub statement: Statement,
}

/// Splits `sql` at top-level `;` and parses every statement.
pub fn parse_script(sql: &str) -> Result<Vec<ParsedStatement>, SqlError> {
    let dialect = KsqlDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::at(e.location, e.message))?;
    let tokens: Vec<TokenWithSpan> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let offsets = LineOffsets::new(sql);
    let mut out = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0i32;
    for t in tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if t.token == Token::SemiColon && depth <= 0 {
            if !current.is_empty() {
                let text = offsets.slice(sql, &current, Some(t.span.start));
                out.push(ParsedStatement {
                    text,
                    statement: parse_statement(std::mem::take(&mut current))?,
                });
            }
            depth = 0;
            continue;
        }
        current.push(t);
    }
    if !current.is_empty() {
        let text = offsets.slice(sql, &current, None);
        out.push(ParsedStatement {
            text,
            statement: parse_statement(current)?,
        });
    }
    if out.is_empty() {
        return Err(SqlError::at(Location::new(1, 1), "no statement"));
    }
    Ok(out)
}

/// Byte offsets of line starts, to cut a statement's text out of the script.
struct LineOffsets(Vec<usize>);

impl LineOffsets {
    fn new(sql: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Self(starts)
    }

    fn byte(&self, sql: &str, loc: Location) -> usize {
        let Some(&line_start) = usize::try_from(loc.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
            .and_then(|l| self.0.get(l))
        else {
            return sql.len();
        };
        let col = usize::try_from(loc.column.saturating_sub(1)).unwrap_or(usize::MAX);
        sql[line_start..]
            .char_indices()
            .nth(col)
            .map_or(sql.len(), |(i, _)| line_start + i)
    }

    fn slice(&self, sql: &str, tokens: &[TokenWithSpan], end: Option<Location>) -> String {
        let start = tokens.first().map_or(0, |t| self.byte(sql, t.span.start));
        let end = end.map_or(sql.len(), |e| self.byte(sql, e));
        sql.get(start..end.max(start))
            .unwrap_or("")
            .trim()
            .to_owned()
    }
}

/// A cursor over one statement's tokens.
struct Cursor {
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<TokenWithSpan> {
        let t = self.tokens.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// Where the next token is, or just past the last one.
    fn loc(&self) -> Location {
        match self.peek() {
            Some(t) => t.span.start,
            None => self.tokens.last().map_or(Location::new(1, 1), |t| {
                Location::new(t.span.end.line, t.span.end.column)
            }),
        }
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| is_keyword(&t.token, kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_keyword(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected {kw}")))
        }
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek().is_some_and(|t| t.token == *token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token) -> Result<(), SqlError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expected '{token}'")))
        }
    }

    fn unexpected(&self, what: &str) -> SqlError {
        match self.peek() {
            Some(t) => SqlError::at(t.span.start, format!("{what}, found '{}'", t.token)),
            None => SqlError::at(
                self.loc(),
                format!("{what}, found the end of the statement"),
            ),
        }
    }

    fn name(&mut self, what: &str) -> Result<Name, SqlError> {
        match self.peek() {
            Some(TokenWithSpan {
                token: Token::Word(w),
                span,
            }) => {
                let name = Name {
                    value: w.value.clone(),
                    loc: span.start,
                };
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.unexpected(&format!("expected {what}"))),
        }
    }

    fn expect_end(&self) -> Result<(), SqlError> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(SqlError::at(
                t.span.start,
                format!("unexpected '{}' after the end of the statement", t.token),
            )),
        }
    }

    fn number(&mut self, what: &str) -> Result<(i64, Location), SqlError> {
        match self.peek() {
            Some(TokenWithSpan {
                token: Token::Number(n, _),
                span,
            }) => {
                let loc = span.start;
                let v = n
                    .parse::<i64>()
                    .map_err(|_| SqlError::at(loc, format!("{what} must be a whole number")))?;
                self.pos += 1;
                Ok((v, loc))
            }
            _ => Err(self.unexpected(&format!("expected {what}"))),
        }
    }
}

fn is_keyword(token: &Token, kw: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

fn parse_statement(tokens: Vec<TokenWithSpan>) -> Result<Statement, SqlError> {
    let mut c = Cursor { tokens, pos: 0 };
    if c.eat_keyword("CREATE") {
        if c.peek_keyword("OR") {
            return Err(c.unexpected("CREATE OR REPLACE is not supported: DROP, then CREATE"));
        }
        let relation = if c.eat_keyword("STREAM") {
            Relation::Stream
        } else if c.eat_keyword("TABLE") {
            Relation::Table
        } else {
            return Err(c.unexpected("expected STREAM or TABLE after CREATE"));
        };
        let name = c.name("a name")?;
        if c.peek().is_some_and(|t| t.token == Token::LParen) {
            if relation == Relation::Table {
                return Err(c.unexpected(
                    "CREATE TABLE with a column list (a source table) is not supported; use CREATE TABLE … AS SELECT",
                ));
            }
            let columns = column_list(&mut c)?;
            let properties = with_clause(&mut c)?;
            if c.peek_keyword("AS") {
                return Err(c.unexpected("a stream with a column list cannot also be AS SELECT"));
            }
            c.expect_end()?;
            return Ok(Statement::CreateStream {
                name,
                columns,
                properties,
            });
        }
        let properties = with_clause(&mut c)?;
        if !c.peek_keyword("AS") {
            return Err(c.unexpected(match relation {
                Relation::Stream => "expected a column list '(' or AS SELECT",
                Relation::Table => "expected AS SELECT",
            }));
        }
        c.pos += 1;
        let select_loc = c.loc();
        if !c.peek_keyword("SELECT") {
            return Err(c.unexpected("expected SELECT"));
        }
        let rest = c.tokens.split_off(c.pos);
        let (query, window, emit) = parse_select(rest)?;
        return Ok(Statement::CreateAs {
            relation,
            name,
            properties,
            query,
            select_loc,
            window,
            emit,
        });
    }
    if c.eat_keyword("DROP") {
        if !(c.eat_keyword("STREAM") || c.eat_keyword("TABLE")) {
            return Err(c.unexpected("expected STREAM or TABLE after DROP"));
        }
        let if_exists = if c.eat_keyword("IF") {
            c.expect_keyword("EXISTS")?;
            true
        } else {
            false
        };
        let name = c.name("a name")?;
        c.expect_end()?;
        return Ok(Statement::Drop { name, if_exists });
    }
    if c.peek_keyword("SELECT") {
        let select_loc = c.loc();
        let (query, window, emit) = parse_select(c.tokens)?;
        if let Some(w) = window {
            return Err(SqlError::at(
                w.loc,
                "a pull query cannot have a WINDOW clause; query the windowed table instead",
            ));
        }
        return Ok(Statement::Select {
            query,
            select_loc,
            emit,
        });
    }
    Err(c.unexpected("expected CREATE, DROP or SELECT"))
}

fn column_list(c: &mut Cursor) -> Result<Vec<(Name, SqlType)>, SqlError> {
    c.expect(&Token::LParen)?;
    let mut columns = Vec::new();
    loop {
        let name = c.name("a column name")?;
        let ty_loc = c.loc();
        let ty_name = c.name("a column type")?;
        let ty = SqlType::from_name(&ty_name.value).ok_or_else(|| {
            SqlError::at(
                ty_loc,
                format!(
                    "unknown type '{}' (use VARCHAR, INT, BIGINT, DOUBLE, BOOLEAN, MAP, STRUCT, ARRAY or JSON)",
                    ty_name.value
                ),
            )
        })?;
        skip_type_parameters(c)?;
        // ksqlDB key markers do not change the value schema.
        if c.eat_keyword("PRIMARY") {
            c.expect_keyword("KEY")?;
        } else {
            c.eat_keyword("KEY");
        }
        if columns
            .iter()
            .any(|(n, _): &(Name, SqlType)| n.value.eq_ignore_ascii_case(&name.value))
        {
            return Err(SqlError::at(
                name.loc,
                format!("column '{}' is declared twice", name.value),
            ));
        }
        columns.push((name, ty));
        if c.eat(&Token::Comma) {
            continue;
        }
        c.expect(&Token::RParen)?;
        return Ok(columns);
    }
}

/// Skips `<…>` (MAP, STRUCT, ARRAY) or `(…)` (VARCHAR(n), DECIMAL(p, s)) after a type.
fn skip_type_parameters(c: &mut Cursor) -> Result<(), SqlError> {
    let (open, close) = match c.peek().map(|t| &t.token) {
        Some(Token::Lt) => (Token::Lt, Token::Gt),
        Some(Token::LParen) => (Token::LParen, Token::RParen),
        _ => return Ok(()),
    };
    let start = c.loc();
    let mut depth = 0i32;
    while let Some(t) = c.next() {
        if t.token == open {
            depth += 1;
        } else if t.token == close {
            depth -= 1;
        } else if open == Token::Lt && t.token == Token::ShiftRight {
            depth -= 2;
        } else if open == Token::Lt && t.token == Token::ShiftLeft {
            depth += 2;
        }
        if depth <= 0 {
            return Ok(());
        }
    }
    Err(SqlError::at(start, "unclosed type parameters"))
}

fn with_clause(c: &mut Cursor) -> Result<Vec<Property>, SqlError> {
    if !c.eat_keyword("WITH") {
        return Ok(Vec::new());
    }
    c.expect(&Token::LParen)?;
    let mut props: Vec<Property> = Vec::new();
    loop {
        let key = c.name("a property name")?;
        c.expect(&Token::Eq)?;
        let value_loc = c.loc();
        let value = match c.next().map(|t| t.token) {
            Some(Token::SingleQuotedString(s)) => s,
            Some(Token::Number(n, _)) => n,
            _ => {
                return Err(SqlError::at(
                    value_loc,
                    "expected a quoted string or a number as the property value",
                ));
            }
        };
        let upper = key.value.to_ascii_uppercase();
        if props.iter().any(|p| p.key == upper) {
            return Err(SqlError::at(
                key.loc,
                format!("property {upper} is given twice"),
            ));
        }
        props.push(Property {
            key: upper,
            value,
            key_loc: key.loc,
            value_loc,
        });
        if c.eat(&Token::Comma) {
            continue;
        }
        c.expect(&Token::RParen)?;
        return Ok(props);
    }
}

type SelectParts = (
    Box<Query>,
    Option<WindowClause>,
    Option<(EmitMode, Location)>,
);

/// Cuts the `WINDOW` and `EMIT` clauses out of a `SELECT`'s tokens and parses the rest.
fn parse_select(mut tokens: Vec<TokenWithSpan>) -> Result<SelectParts, SqlError> {
    let fallback = tokens.first().map_or(Location::new(1, 1), |t| t.span.start);
    // EMIT CHANGES | FINAL: must end the statement.
    let mut emit = None;
    let mut depth = 0i32;
    let mut emit_at = None;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && is_keyword(&t.token, "EMIT") => {
                emit_at = Some(i);
                break;
            }
            _ => {}
        }
    }
    if let Some(i) = emit_at {
        let tail = tokens.split_off(i);
        let mut c = Cursor {
            tokens: tail,
            pos: 1,
        };
        let loc = c.tokens[0].span.start;
        let mode = if c.eat_keyword("CHANGES") {
            EmitMode::Changes
        } else if c.eat_keyword("FINAL") {
            EmitMode::Final
        } else {
            return Err(c.unexpected("expected CHANGES or FINAL after EMIT"));
        };
        c.expect_end()?;
        emit = Some((mode, loc));
    }
    // WINDOW TUMBLING | HOPPING | SESSION (…) at the top level.
    let mut window = None;
    let mut depth = 0i32;
    let mut window_at = None;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && is_keyword(&t.token, "WINDOW") => {
                window_at = Some(i);
                break;
            }
            _ => {}
        }
    }
    if let Some(start) = window_at {
        let mut c = Cursor {
            tokens: tokens.split_off(start),
            pos: 0,
        };
        window = Some(window_clause(&mut c)?);
        let rest = c.tokens.split_off(c.pos);
        tokens.extend(rest);
    }
    // An explicit end token just past the last one, so "found: EOF" errors have a place.
    if let Some(last) = tokens.last() {
        let end = last.span.end;
        tokens.push(TokenWithSpan::new(Token::EOF, Span::new(end, end)));
    }
    let dialect = KsqlDialect;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let query = parser
        .parse_query()
        .map_err(|e| SqlError::from_parser(e, fallback))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::at(
            next.span.start,
            format!("unexpected '{}' after the end of the query", next.token),
        ));
    }
    Ok((query, window, emit))
}

fn window_clause(c: &mut Cursor) -> Result<WindowClause, SqlError> {
    let loc = c.loc();
    c.expect_keyword("WINDOW")?;
    let kind_loc = c.loc();
    let kind = c
        .name("TUMBLING, HOPPING or SESSION")?
        .value
        .to_ascii_uppercase();
    c.expect(&Token::LParen)?;
    let spec = match kind.as_str() {
        "TUMBLING" => {
            c.expect_keyword("SIZE")?;
            WindowSpec::Tumbling {
                size_ms: duration(c)?,
            }
        }
        "HOPPING" => {
            c.expect_keyword("SIZE")?;
            let size_ms = duration(c)?;
            c.expect(&Token::Comma)?;
            c.expect_keyword("ADVANCE")?;
            c.expect_keyword("BY")?;
            let advance_loc = c.loc();
            let advance_ms = duration(c)?;
            if advance_ms > size_ms {
                return Err(SqlError::at(
                    advance_loc,
                    "a hopping window cannot ADVANCE BY more than its SIZE",
                ));
            }
            WindowSpec::Hopping {
                size_ms,
                advance_ms,
            }
        }
        "SESSION" => WindowSpec::Session {
            gap_ms: duration(c)?,
        },
        _ => {
            return Err(SqlError::at(
                kind_loc,
                format!("unknown window type '{kind}': use TUMBLING, HOPPING or SESSION"),
            ));
        }
    };
    let mut grace_ms = None;
    let mut retention_ms = None;
    while c.eat(&Token::Comma) {
        if c.eat_keyword("GRACE") {
            c.expect_keyword("PERIOD")?;
            grace_ms = Some(duration(c)?);
        } else if c.eat_keyword("RETENTION") {
            retention_ms = Some(duration(c)?);
        } else {
            return Err(c.unexpected("expected GRACE PERIOD or RETENTION"));
        }
    }
    c.expect(&Token::RParen)?;
    Ok(WindowClause {
        spec,
        grace_ms,
        retention_ms,
        loc,
    })
}

/// `n UNIT` in milliseconds.
fn duration(c: &mut Cursor) -> Result<i64, SqlError> {
    let (n, loc) = c.number("a duration")?;
    if n <= 0 {
        return Err(SqlError::at(loc, "a duration must be positive"));
    }
    let unit_loc = c.loc();
    let unit = c.name("a time unit")?.value.to_ascii_uppercase();
    let unit_ms: i64 = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => {
            return Err(SqlError::at(
                unit_loc,
                format!(
                    "unknown time unit '{unit}': use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"
                ),
            ));
        }
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| SqlError::at(loc, "duration too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_script_and_keeps_statement_text() {
        let sql = "CREATE STREAM s (a VARCHAR, m MAP<VARCHAR, ARRAY<INT>>) WITH (KAFKA_TOPIC='t');\n\
                   -- a comment\n\
                   CREATE TABLE x AS SELECT a, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 5 SECONDS) GROUP BY a EMIT FINAL;";
        let stmts = parse_script(sql).unwrap();
        assert_eq!(stmts.len(), 2);
        assert_eq!(
            stmts[0].text,
            "CREATE STREAM s (a VARCHAR, m MAP<VARCHAR, ARRAY<INT>>) WITH (KAFKA_TOPIC='t')"
        );
        assert!(stmts[1].text.starts_with("CREATE TABLE x AS SELECT"));
        assert!(stmts[1].text.ends_with("EMIT FINAL"));
        let Statement::CreateAs { window, emit, .. } = &stmts[1].statement else {
            panic!("not CREATE AS")
        };
        let w = window.as_ref().unwrap();
        assert_eq!(w.spec, WindowSpec::Tumbling { size_ms: 60_000 });
        assert_eq!(w.grace_ms, Some(5_000));
        assert_eq!(emit.unwrap().0, EmitMode::Final);
        assert_eq!(w.loc, Location::new(3, 45));
    }

    #[test]
    fn hopping_and_session_windows() {
        for (sql, spec) in [
            (
                "CREATE TABLE x AS SELECT COUNT(*) FROM s WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY a",
                WindowSpec::Hopping {
                    size_ms: 10_000,
                    advance_ms: 5_000,
                },
            ),
            (
                "CREATE TABLE x AS SELECT COUNT(*) FROM s WINDOW SESSION (30 MINUTES) GROUP BY a",
                WindowSpec::Session { gap_ms: 1_800_000 },
            ),
        ] {
            let stmts = parse_script(sql).unwrap();
            let Statement::CreateAs { window, .. } = &stmts[0].statement else {
                panic!()
            };
            assert_eq!(window.as_ref().unwrap().spec, spec);
        }
    }
}
