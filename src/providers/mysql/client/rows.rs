//! Result rows of the text protocol as Rust values: each column's bytes, converted to the
//! type a query asks for.

/// One row of a text result set: each column's bytes, `None` for SQL NULL.
pub type Row = Vec<Option<Vec<u8>>>;

/// A column value as a Rust type.
pub trait FromValue: Sized {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String>;
}

impl FromValue for Vec<u8> {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        value.ok_or_else(|| "NULL where a value was expected".to_owned())
    }
}

impl FromValue for String {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        String::from_utf8(Vec::from_value(value)?).map_err(|_| "a value is not UTF-8".to_owned())
    }
}

/// Unsigned integers: ports, round counts.
macro_rules! unsigned_from_value {
    ($($t:ty),+) => {$(
        impl FromValue for $t {
            fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
                let text = String::from_value(value)?;
                text.trim().parse().map_err(|_| {
                    format!("\"{text}\" is not a whole number up to {}", <$t>::MAX)
                })
            }
        }
    )+};
}

unsigned_from_value!(u16, u32);

/// A comparison's result: MySQL and MariaDB return `0` or `1`.
impl FromValue for bool {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        match String::from_value(value)?.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(format!("\"{other}\" is not a truth value")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Option<Vec<u8>>) -> Result<Self, String> {
        value.map(|v| T::from_value(Some(v))).transpose()
    }
}

/// A row as a Rust type: one value, or a tuple of them.
pub trait FromRow: Sized {
    fn from_row(row: Row) -> Result<Self, String>;
}

fn column<T: FromValue>(row: &mut std::vec::IntoIter<Option<Vec<u8>>>) -> Result<T, String> {
    T::from_value(row.next().ok_or("fewer columns than expected")?)
}

impl FromRow for String {
    fn from_row(row: Row) -> Result<Self, String> {
        column(&mut row.into_iter())
    }
}

macro_rules! tuple_from_row {
    ($($t:ident),+) => {
        impl<$($t: FromValue),+> FromRow for ($($t,)+) {
            fn from_row(row: Row) -> Result<Self, String> {
                let mut it = row.into_iter();
                Ok(($(column::<$t>(&mut it)?,)+))
            }
        }
    };
}
tuple_from_row!(A);
tuple_from_row!(A, B);
tuple_from_row!(A, B, C);
tuple_from_row!(A, B, C, D);
