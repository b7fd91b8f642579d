//! Totality: no SQL text and no record bytes can panic the compiler or a running query —
//! mangled statements are errors with a position, mangled records are decode errors.

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sightline_stream::sql::Catalog;

const SCRIPT: &str = "CREATE STREAM ev (user_id VARCHAR, event_type VARCHAR, amount DOUBLE, qty INT, metadata MAP<VARCHAR, VARCHAR>, ts BIGINT) WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='ts');\n\
CREATE TABLE t AS SELECT user_id, WINDOWSTART AS ws, COUNT(*) AS n, SUM(CASE WHEN event_type = 'purchase' THEN amount ELSE 0 END) / COUNT(*) AS r, TOPK(qty, 2) AS top FROM ev WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS) WHERE user_id LIKE 'u%' AND EXTRACTJSONFIELD(metadata, '$.a.b') IS NULL AND qty IN (1, 2, 3) GROUP BY user_id HAVING COUNT(*) > 1 EMIT FINAL;\n\
CREATE STREAM s AS SELECT user_id, metadata->'a'->>'b' AS b, UCASE(event_type) AS e FROM ev WHERE NOT (amount BETWEEN 1 AND 2);";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mangled_sql_is_an_error_not_a_panic(cut in 0usize..SCRIPT.len(), len in 0usize..12, insert in "[ -~]{0,6}") {
        let mut sql: Vec<char> = SCRIPT.chars().collect();
        let end = (cut + len).min(sql.len());
        sql.splice(cut..end, insert.chars());
        let sql: String = sql.into_iter().collect();
        let mut c = Catalog::new();
        if let Err(e) = c.execute(&sql) {
            prop_assert!(e.line >= 1 && e.line <= 4, "{e}");
        }
        let _ = c.pull(&sql);
        let _ = c.pull("SELECT * FROM t WHERE user_id = 'u1'");
    }

    #[test]
    fn any_record_bytes_are_handled(bytes in proptest::collection::vec(any::<u8>(), 0..80), json_ish in r#"\{("[a-z_]{1,8}": ?(null|true|-?[0-9]{1,20}(\.[0-9]+)?|"[a-z]*"|\{\}|\[\]),? ?){0,6}\}"#) {
        let mut c = Catalog::new();
        c.execute(SCRIPT).unwrap();
        let mut out = Vec::new();
        for name in ["t", "s"] {
            let q = c.query_mut(name).unwrap();
            let _ = q.process(&bytes, 0, 0, 0, &mut out);
            let _ = q.process(json_ish.as_bytes(), 1, 0, 0, &mut out);
            q.flush(&mut out);
        }
    }
}
