//! Zero-copy exchange between arrow-rs `RecordBatch`es and Polars
//! `DataFrame`s through the Arrow C Data Interface.
//!
//! Polars links its own Arrow implementation (`polars-arrow`), so the two
//! cannot share Rust types; they can share *memory*. Each column is exported
//! by one side as the C structs `ArrowArray`/`ArrowSchema` and imported by
//! the other, which takes over the release callback: buffers are never
//! copied for fixed-width types, booleans, dates, timestamps, decimals and
//! list values. Strings travel as `Utf8View` (the layout Polars uses
//! natively); converting back to `Utf8` at the end (when the caller asks for
//! the original schema) is the one copy.
//!
//! FFI boundary: the only `unsafe` in this crate lives here. arrow-rs's
//! `FFI_ArrowArray`/`FFI_ArrowSchema` and polars-arrow's `ArrowArray`/
//! `ArrowSchema` are both `#[repr(C)]` definitions of the same C structs
//! from the Arrow specification; moving one into the other by value
//! (`transmute`, sizes checked at compile time) hands over ownership of the
//! release callback exactly once, and the importers validate the content.
#![allow(unsafe_code)]

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, make_array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, to_ffi};
use polars::prelude::{Column, CompatLevel, DataFrame, IntoColumn, PlSmallStr, Series};
use polars_arrow::ffi as pffi;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// arrow-rs refused an array (a bug in a producer: retrying will not help).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Polars refused an array or a type it was built without (bad input).
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

// The C structs must have the same size on both sides for the moves below.
const _: () = assert!(size_of::<FFI_ArrowArray>() == size_of::<pffi::ArrowArray>());
const _: () = assert!(size_of::<FFI_ArrowSchema>() == size_of::<pffi::ArrowSchema>());

/// The arrow-rs type Polars receives for an input type: strings as views
/// (Polars' own layout, so the import shares the buffers), recursively.
fn polars_friendly(dt: &DataType) -> Option<DataType> {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 => Some(DataType::Utf8View),
        DataType::List(f) => polars_friendly(f.data_type())
            .map(|inner| DataType::List(Arc::new(Field::new(f.name(), inner, f.is_nullable())))),
        _ => None,
    }
}

/// A `RecordBatch` as a Polars `DataFrame`, sharing the column buffers.
pub fn record_batch_to_polars(batch: &RecordBatch) -> Result<DataFrame, InteropError> {
    let mut columns: Vec<Column> = Vec::with_capacity(batch.num_columns());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let array = match polars_friendly(array.data_type()) {
            Some(dt) => cast(array, &dt)?,
            None => array.clone(),
        };
        let (ffi_array, ffi_schema) = to_ffi(&array.to_data())?;
        // SAFETY: see the module docs: same #[repr(C)] struct, ownership of
        // the release callbacks moves with the value.
        let p_array: pffi::ArrowArray = unsafe { std::mem::transmute(ffi_array) };
        let p_schema: pffi::ArrowSchema = unsafe { std::mem::transmute(ffi_schema) };
        // SAFETY: `p_schema` was produced by arrow-rs's exporter just above.
        let p_field = unsafe { pffi::import_field_from_c(&p_schema) }?;
        // SAFETY: the array matches the schema it was exported with.
        let p_arr = unsafe { pffi::import_array_from_c(p_array, p_field.dtype().clone()) }?;
        let series = Series::from_arrow(PlSmallStr::from_str(field.name()), p_arr)?;
        columns.push(series.into_column());
    }
    Ok(DataFrame::new(batch.num_rows(), columns)?)
}

/// A Polars `DataFrame` as one `RecordBatch`, sharing the column buffers.
/// With `schema`, columns are matched by name and cast to its types (a copy
/// only where the layouts differ, e.g. `Utf8View` back to `Utf8`); without,
/// the types are Polars' Arrow export types.
pub fn polars_to_record_batch(
    df: &DataFrame,
    schema: Option<&SchemaRef>,
) -> Result<RecordBatch, InteropError> {
    let mut fields = Vec::with_capacity(df.width());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(df.width());
    for column in df.columns() {
        let series = column.as_materialized_series().rechunk();
        let name = series.name().to_string();
        let array: ArrayRef = if series.is_empty() || series.n_chunks() == 0 {
            let dt = export_type(&series)?;
            arrow::array::new_empty_array(&dt)
        } else {
            let p_arr = series.to_arrow(0, CompatLevel::newest());
            let p_field = pffi_field(&series);
            let p_schema = pffi::export_field_to_c(&p_field);
            let p_array = pffi::export_array_to_c(p_arr);
            // SAFETY: see the module docs.
            let ffi_array: FFI_ArrowArray = unsafe { std::mem::transmute(p_array) };
            let ffi_schema: FFI_ArrowSchema = unsafe { std::mem::transmute(p_schema) };
            // SAFETY: produced by polars-arrow's exporter for this very field.
            let data = unsafe { from_ffi(ffi_array, &ffi_schema) }?;
            make_array(data)
        };
        let (field, array) = match schema.and_then(|s| s.field_with_name(&name).ok()) {
            Some(target) if target.data_type() != array.data_type() => {
                let cast_array = cast(&array, target.data_type())?;
                (target.clone(), cast_array)
            }
            Some(target) => (target.clone(), array),
            None => (Field::new(&name, array.data_type().clone(), true), array),
        };
        fields.push(field);
        arrays.push(array);
    }
    let schema = match schema {
        Some(s) if s.fields().len() == fields.len() => {
            Schema::new_with_metadata(fields, s.metadata().clone())
        }
        _ => Schema::new(fields),
    };
    Ok(RecordBatch::try_new_with_options(
        Arc::new(schema),
        arrays,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(df.height())),
    )?)
}

fn pffi_field(series: &Series) -> polars_arrow::datatypes::Field {
    series
        .dtype()
        .to_arrow_field(series.name().clone(), CompatLevel::newest())
}

/// The arrow-rs type of a column Polars would export (for empty frames).
fn export_type(series: &Series) -> Result<DataType, InteropError> {
    let p_schema = pffi::export_field_to_c(&pffi_field(series));
    // SAFETY: see the module docs.
    let ffi_schema: FFI_ArrowSchema = unsafe { std::mem::transmute(p_schema) };
    Ok(DataType::try_from(&ffi_schema)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int16Array,
        Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Int32Type, TimeUnit};

    /// Every type the PostgreSQL extract produces, with nulls in each column.
    fn all_types() -> RecordBatch {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("i16", DataType::Int16, true),
            Field::new("i32", DataType::Int32, true),
            Field::new("i64", DataType::Int64, true),
            Field::new("dec", DataType::Decimal128(18, 4), true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("txt", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", ts.clone(), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            ),
            Field::new(
                "names",
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ),
        ]));
        let names = {
            let mut b = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new());
            b.values().append_value("a");
            b.values().append_null();
            b.append(true);
            b.append(false);
            b.values().append_value("é✓");
            b.append(true);
            b.finish()
        };
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int16Array::from(vec![Some(-3), None, Some(i16::MAX)])),
                Arc::new(Int32Array::from(vec![Some(1), Some(i32::MIN), None])),
                Arc::new(Int64Array::from(vec![None, Some(i64::MAX), Some(-7)])),
                Arc::new(
                    Decimal128Array::from(vec![Some(12_345_678), None, Some(-1)])
                        .with_precision_and_scale(18, 4)
                        .expect("decimal type"),
                ),
                Arc::new(Float32Array::from(vec![
                    Some(1.5),
                    None,
                    Some(f32::MIN_POSITIVE),
                ])),
                Arc::new(Float64Array::from(vec![Some(-0.25), Some(1e300), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
                Arc::new(StringArray::from(vec![
                    Some("x"),
                    None,
                    Some("long string beyond twelve bytes"),
                ])),
                Arc::new(Date32Array::from(vec![Some(0), Some(20_000), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_700_000_000_123_456),
                        None,
                        Some(0),
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1), None, Some(3)]),
                    None,
                    Some(vec![]),
                ])),
                Arc::new(names),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn arrow_to_polars_and_back_keeps_every_value() {
        let batch = all_types();
        let df = record_batch_to_polars(&batch).expect("to polars");
        assert_eq!(df.height(), 3);
        assert_eq!(df.width(), batch.num_columns());
        let back = polars_to_record_batch(&df, Some(&batch.schema())).expect("to arrow");
        assert_eq!(back.schema(), batch.schema());
        for (i, (a, b)) in batch.columns().iter().zip(back.columns()).enumerate() {
            assert_eq!(
                a.to_data(),
                b.to_data(),
                "column {}",
                batch.schema().field(i).name()
            );
        }
    }

    #[test]
    fn fixed_width_buffers_are_shared_not_copied() {
        let batch = all_types();
        let df = record_batch_to_polars(&batch).expect("to polars");
        let back = polars_to_record_batch(&df, None).expect("to arrow");
        let before = batch.column(2).to_data().buffers()[0].as_ptr();
        let after = back.column(2).to_data().buffers()[0].as_ptr();
        assert_eq!(before, after, "int64 values must be the same memory");
    }

    #[test]
    fn polars_values_arrive_in_arrow() {
        let df = polars::df!(
            "id" => &[1i64, 2, 3],
            "name" => &[Some("a"), None, Some("c")],
            "score" => &[Some(1.5f64), Some(2.0), None],
        )
        .expect("frame");
        let batch = polars_to_record_batch(&df, None).expect("to arrow");
        assert_eq!(batch.num_rows(), 3);
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(ids.values().to_vec(), vec![1, 2, 3]);
        let names = cast(batch.column(1), &DataType::Utf8).expect("utf8");
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            vec![Some("a"), None, Some("c")]
        );
        assert!(batch.column(2).is_null(2));
        // And back into Polars unchanged.
        let again = record_batch_to_polars(&batch).expect("to polars");
        assert!(again.equals_missing(&df));
    }

    #[test]
    fn empty_frames_convert() {
        let batch = all_types().slice(0, 0);
        let df = record_batch_to_polars(&batch).expect("to polars");
        assert_eq!(df.height(), 0);
        let back = polars_to_record_batch(&df, Some(&batch.schema())).expect("to arrow");
        assert_eq!(back.num_rows(), 0);
        assert_eq!(back.schema(), batch.schema());
    }
}
