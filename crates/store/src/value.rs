//! Backend-neutral statements, parameters and rows.

use crate::{Error, Result};

/// A bound parameter or a column value. The schema uses only 64-bit integers and text
/// (timestamps are Unix milliseconds, flags are 0/1), so both backends agree on types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (`INTEGER` in SQLite, `BIGINT` in PostgreSQL).
    Int(i64),
    /// UTF-8 text.
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One SQL statement with its parameters.
///
/// The SQL is a `'static` string written with numbered `?1`, `?2` placeholders (the
/// PostgreSQL backend rewrites them to `$1`, `$2`): values are only ever bound, never
/// spliced into the text.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The SQL text.
    pub sql: &'static str,
    /// The bound parameters, in placeholder order.
    pub params: Vec<Value>,
    /// Whether the statement returns rows (a `SELECT` or `... RETURNING`).
    pub returns_rows: bool,
}

impl Statement {
    /// A statement that returns rows.
    pub fn query(sql: &'static str, params: Vec<Value>) -> Self {
        Self { sql, params, returns_rows: true }
    }

    /// A statement that changes rows and returns none.
    pub fn execute(sql: &'static str, params: Vec<Value>) -> Self {
        Self { sql, params, returns_rows: false }
    }

    /// The statement with `more` parameters after its own.
    pub(crate) fn with(mut self, more: impl IntoIterator<Item = Value>) -> Self {
        self.params.extend(more);
        self
    }
}

/// What one statement produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The rows returned (empty for a statement that returns none).
    pub rows: Vec<Row>,
    /// Rows affected (for statements that return none) or returned.
    pub affected: u64,
}

/// A row: its values in select-list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value> {
        self.0.get(i).ok_or_else(|| Error::decode(format!("#{i}"), "the row has fewer columns"))
    }

    /// The integer in column `i`.
    pub fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| Error::decode(format!("#{i}"), "expected an integer, found NULL"))
    }

    /// The integer in column `i`, or `None` for `NULL`.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            Value::Text(_) => Err(Error::decode(format!("#{i}"), "expected an integer, found text")),
        }
    }

    /// The text in column `i`.
    pub fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.ok_or_else(|| Error::decode(format!("#{i}"), "expected text, found NULL"))
    }

    /// The text in column `i`, or `None` for `NULL`.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            Value::Int(_) => Err(Error::decode(format!("#{i}"), "expected text, found an integer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_accessors_check_types() {
        let row = Row(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.int(0).unwrap(), 3);
        assert_eq!(row.opt_int(1).unwrap(), None);
        assert_eq!(row.text(2).unwrap(), "x");
        assert!(row.text(0).is_err());
        assert!(row.int(1).is_err());
        assert!(row.int(9).is_err());
        assert_eq!(Value::from(None::<i64>), Value::Null);
    }
}
