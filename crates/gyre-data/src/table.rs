//! The stored table: `row_id`, `_split`, then the dataset's columns, as one Arrow batch in memory
//! and as zstd-compressed Parquet on disk.

use crate::DataError;
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, RecordBatchReader, StringArray,
    UInt64Array,
};
use arrow_schema::{Field, Schema};
use gyre_core::{ROW_ID, RowId, SPLIT, Split};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::sync::Arc;

/// The split column's dictionary, fixed so that codes mean the same in every table.
const SPLIT_VALUES: [&str; 3] = ["holdout", "train", "valid"];

fn split_code(s: Split) -> i32 {
    match s {
        Split::Holdout => 0,
        Split::Train => 1,
        Split::Valid => 2,
    }
}

/// Assembles the stored table from row ids, splits and the dataset's typed columns.
pub fn assemble(
    row_ids: &[u64],
    splits: &[Split],
    columns: Vec<(String, ArrayRef)>,
) -> Result<RecordBatch, DataError> {
    let keys: Int32Array = splits.iter().map(|&s| split_code(s)).collect();
    let split_array = DictionaryArray::<Int32Type>::try_new(
        keys,
        Arc::new(StringArray::from(SPLIT_VALUES.to_vec())),
    )
    .map_err(|e| DataError::Parquet(e.to_string()))?;
    let mut fields = vec![
        Field::new(ROW_ID, arrow_schema::DataType::UInt64, false),
        Field::new(SPLIT, split_array.data_type().clone(), false),
    ];
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(row_ids.to_vec())),
        Arc::new(split_array),
    ];
    for (name, array) in columns {
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| DataError::Parquet(e.to_string()))
}

/// Writes the table as Parquet (zstd). Deterministic: the same table gives the same bytes.
pub fn to_parquet(batch: &RecordBatch) -> Result<Vec<u8>, DataError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_created_by("gyre".to_string())
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
        .map_err(|e| DataError::Parquet(e.to_string()))?;
    w.write(batch)
        .map_err(|e| DataError::Parquet(e.to_string()))?;
    w.close().map_err(|e| DataError::Parquet(e.to_string()))?;
    Ok(buf)
}

/// Reads a stored table back into one batch.
pub fn from_parquet(bytes: bytes::Bytes) -> Result<RecordBatch, DataError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| DataError::Parquet(e.to_string()))?
        .with_batch_size(1 << 20)
        .build()
        .map_err(|e| DataError::Parquet(e.to_string()))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<Result<_, _>>()
        .map_err(|e| DataError::Parquet(e.to_string()))?;
    let batch = arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| DataError::Parquet(e.to_string()))?;
    canonical_dictionaries(batch)
}

/// Re-encodes every dictionary column so that its values are sorted and distinct and a key is a
/// category's index in that order, as at import. Parquet keeps one dictionary per row group, so a
/// table read back in several batches would otherwise carry merged dictionaries with other keys.
fn canonical_dictionaries(batch: RecordBatch) -> Result<RecordBatch, DataError> {
    let mut columns = batch.columns().to_vec();
    let mut changed = false;
    for col in columns.iter_mut() {
        let Some(d) = col.as_dictionary_opt::<Int32Type>() else {
            continue;
        };
        let values = d.values().as_string::<i32>();
        let mut sorted: Vec<&str> = values.iter().flatten().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let remap: Vec<i32> = (0..values.len())
            .map(|i| sorted.binary_search(&values.value(i)).unwrap_or(0) as i32)
            .collect();
        let identity =
            sorted.len() == values.len() && remap.iter().enumerate().all(|(i, &k)| k == i as i32);
        if identity {
            continue;
        }
        let keys: Int32Array = d
            .keys()
            .iter()
            .map(|k| k.map(|k| remap[k as usize]))
            .collect();
        let dict = DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(StringArray::from_iter_values(sorted.iter())),
        )
        .map_err(|e| DataError::Parquet(e.to_string()))?;
        *col = Arc::new(dict);
        changed = true;
    }
    if !changed {
        return Ok(batch);
    }
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| DataError::Parquet(e.to_string()))
}

/// The row ids of a stored table.
pub fn row_ids(batch: &RecordBatch) -> Vec<RowId> {
    batch
        .column_by_name(ROW_ID)
        .expect("stored tables have row_id")
        .as_primitive::<arrow_array::types::UInt64Type>()
        .values()
        .iter()
        .map(|&v| RowId(v))
        .collect()
}

/// The split of every row of a stored table.
pub fn splits(batch: &RecordBatch) -> Vec<Split> {
    let dict = batch
        .column_by_name(SPLIT)
        .expect("stored tables have _split")
        .as_dictionary::<Int32Type>();
    let values = dict.values().as_string::<i32>();
    let map: Vec<Split> = (0..values.len())
        .map(|i| Split::parse(values.value(i)).unwrap_or(Split::Train))
        .collect();
    dict.keys()
        .values()
        .iter()
        .map(|&k| map[k as usize])
        .collect()
}

/// Whether a column's value is missing at a row (null, or a non-finite number).
pub fn is_missing(array: &dyn Array, row: usize) -> bool {
    array.is_null(row)
        || array
            .as_primitive_opt::<arrow_array::types::Float64Type>()
            .is_some_and(|f| !f.value(row).is_finite())
}

/// A cell as text (for keys and for showing a row).
pub fn display_value(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    if let Some(f) = array.as_primitive_opt::<arrow_array::types::Float64Type>() {
        return crate::infer::format_number(f.value(row));
    }
    arrow_cast::display::array_value_to_string(array, row).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table larger than one read batch, with categories that appear in a different order in
    /// each row group, reads back with the import's codes.
    #[test]
    fn dictionaries_survive_several_row_groups() {
        let n = (1 << 20) + 1000;
        let values: Vec<&str> = (0..n)
            .map(|i| {
                if i < (1 << 20) {
                    "b"
                } else if i % 2 == 0 {
                    "c"
                } else {
                    "a"
                }
            })
            .collect();
        let strings = StringArray::from(values.clone());
        let c = crate::infer::infer(&[Arc::new(strings) as ArrayRef], &Default::default());
        assert_eq!(c.categories, vec!["a", "b", "c"]);
        let ids: Vec<u64> = (0..n as u64).collect();
        let batch = assemble(&ids, &vec![Split::Train; n], vec![("x".into(), c.array)]).unwrap();
        let props_bytes = to_parquet(&batch).unwrap();
        let back = from_parquet(props_bytes.into()).unwrap();
        let d = back.column(2).as_dictionary::<Int32Type>();
        let vals = d.values().as_string::<i32>();
        assert_eq!(
            vals.iter().flatten().collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        for (i, k) in d.keys().values().iter().enumerate().step_by(997) {
            assert_eq!(vals.value(*k as usize), values[i]);
        }
    }
}
