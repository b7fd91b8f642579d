//! Malformed continuous SQL: every error names the problem and points at the offending
//! token (1-based line and column in the text as written).

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use sightline_stream::sql::{Catalog, SqlError};

const STREAM: &str = "CREATE STREAM ev (user_id VARCHAR, event_type VARCHAR, amount DOUBLE, qty INT, metadata MAP<VARCHAR, VARCHAR>, ts BIGINT) WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='ts');";

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.execute(STREAM).unwrap();
    c.execute("CREATE TABLE t AS SELECT user_id, COUNT(*) AS n FROM ev GROUP BY user_id;")
        .unwrap();
    c
}

fn err(sql: &str) -> SqlError {
    let mut c = catalog();
    match c.execute(sql) {
        Ok(done) => panic!("accepted: {sql} -> {done:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn check(sql: &str, line: u64, column: u64, message: &str) {
    let e = err(sql);
    assert_eq!(
        (e.line, e.column),
        (line, column),
        "position of {e} in {sql}"
    );
    assert!(
        e.message.contains(message),
        "'{}' lacks '{message}'",
        e.message
    );
}

#[test]
fn errors_point_at_the_offending_token() {
    // Unknown column (second line, so the line counts too).
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*)\nFROM ev WHERE colour = 'red' GROUP BY user_id;",
        2,
        15,
        "unknown column 'colour'",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM nope GROUP BY user_id",
        1,
        49,
        "unknown stream 'nope'",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM t GROUP BY user_id",
        1,
        49,
        "'t' is a table",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev WHERE SUM(qty) > 3 GROUP BY user_id",
        1,
        58,
        "aggregate function SUM is not allowed in WHERE",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, event_type, COUNT(*) FROM ev GROUP BY user_id",
        1,
        35,
        "column 'event_type' must appear in GROUP BY",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, SUM(event_type) AS s FROM ev GROUP BY user_id",
        1,
        39,
        "SUM needs a numeric argument, this is VARCHAR",
    );
    check(
        "CREATE STREAM a AS SELECT user_id FROM ev WHERE qty = 'three'",
        1,
        55,
        "cannot compare BIGINT with VARCHAR",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev GROUP BY user_id EMIT CHANGES garbage",
        1,
        82,
        "unexpected 'garbage'",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev GROUP BY user_id ORDER",
        1,
        69,
        "ORDER",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev WINDOW TUMBLING (SIZE 1 FORTNIGHT) GROUP BY user_id",
        1,
        76,
        "unknown time unit 'FORTNIGHT'",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev GROUP BY user_id EMIT FINAL",
        1,
        69,
        "EMIT FINAL needs a WINDOW",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, WINDOWSTART AS ws, COUNT(*) FROM ev GROUP BY user_id",
        1,
        35,
        "WINDOWSTART needs a WINDOW clause",
    );
    check(
        "CREATE STREAM s2 (a VARCHAR, b BLOB) WITH (KAFKA_TOPIC='x')",
        1,
        32,
        "unknown type 'BLOB'",
    );
    check(
        "CREATE STREAM s2 (a VARCHAR, ts VARCHAR) WITH (KAFKA_TOPIC='x', TIMESTAMP='ts')",
        1,
        75,
        "must be BIGINT epoch milliseconds",
    );
    check(
        "CREATE STREAM s2 (a VARCHAR) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='AVRO')",
        1,
        66,
        "only JSON",
    );
    check(
        "CREATE STREAM ev (a VARCHAR) WITH (KAFKA_TOPIC='x')",
        1,
        15,
        "already exists",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev WHERE user_id LIKE event_type GROUP BY user_id",
        1,
        71,
        "pattern must be a string literal",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, NOSUCH(qty) FROM ev GROUP BY user_id",
        1,
        35,
        "unknown function NOSUCH",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev WHERE amount GROUP BY user_id",
        1,
        58,
        "WHERE must be a boolean condition",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, TOPK(qty, 0) AS t FROM ev GROUP BY user_id",
        1,
        45,
        "whole number from 1 to 1000",
    );
    check(
        "CREATE STREAM a AS SELECT user_id, COUNT(*) FROM ev",
        1,
        36,
        "aggregate function COUNT is not allowed",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) AS n, SUM(qty) AS n FROM ev GROUP BY user_id",
        1,
        62,
        "duplicate output column 'n'",
    );
    check("SELEC * FROM ev", 1, 1, "expected CREATE, DROP or SELECT");
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(* FROM ev GROUP BY user_id",
        1,
        43,
        "Expected: ), found: FROM",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev, ev2 GROUP BY user_id",
        1,
        53,
        "joins are not supported",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*)\nFROM ev GROUP BY user_id HAVING",
        2,
        32,
        "found: EOF",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev WHERE event_type = 'x GROUP BY user_id",
        1,
        71,
        "Unterminated string literal",
    );
    check(
        "CREATE TABLE a AS SELECT user_id, COUNT(*) FROM ev WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 2 MINUTES) GROUP BY user_id",
        1,
        94,
        "cannot ADVANCE BY more than its SIZE",
    );
}

#[test]
fn pull_query_errors() {
    let c = catalog();
    let e = c
        .pull("SELECT * FROM nope WHERE user_id = 'x'")
        .unwrap_err();
    assert_eq!((e.line, e.column), (1, 15), "{e}");
    assert!(e.message.contains("unknown table"), "{e}");
    let e = c.pull("SELECT * FROM ev").unwrap_err();
    assert!(e.message.contains("is a stream"), "{e}");
    let e = c.pull("SELECT missing FROM t").unwrap_err();
    assert_eq!((e.line, e.column), (1, 8), "{e}");
    let e = c.pull("SELECT * FROM t EMIT CHANGES").unwrap_err();
    assert_eq!((e.line, e.column), (1, 17), "{e}");
    let e = c.pull("SELECT * FROM t LIMIT 'x'").unwrap_err();
    assert!(e.message.contains("LIMIT"), "{e}");
}

#[test]
fn failed_script_rolls_back_what_it_created() {
    let mut c = catalog();
    let e = c
        .execute("CREATE STREAM s2 (a VARCHAR) WITH (KAFKA_TOPIC='x');\nCREATE TABLE b AS SELECT a FROM nope GROUP BY a;")
        .unwrap_err();
    assert_eq!((e.line, e.column), (2, 33), "{e}");
    assert!(c.stream("s2").is_none());
    // DROP refuses to orphan a query, and IF EXISTS tolerates absence.
    let e = c.execute("DROP STREAM ev").unwrap_err();
    assert!(e.message.contains("read by query 't'"), "{e}");
    c.execute("DROP TABLE t; DROP STREAM ev; DROP TABLE IF EXISTS t;")
        .unwrap();
    assert!(c.definitions().statements.is_empty());
}
