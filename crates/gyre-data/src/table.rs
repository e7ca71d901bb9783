//! The stored table: `row_id`, `_split`, then the dataset's columns, as one Arrow batch in memory
//! and as zstd-compressed Parquet on disk.

use crate::DataError;
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, RecordBatchReader, StringArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use gyre_core::{ROW_ID, SPLIT, Split};
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
    write_parquet(batch, parquet_properties())
}

/// [`to_parquet`] for a table of mostly distinct numbers, such as a run's predictions:
/// dictionary encoding for its string columns only. A dictionary tried on a column of distinct
/// numbers hashes every value until it outgrows its page and is dropped: Adult's holdout
/// predictions took 4.6 ms to write with dictionaries on every column and 1.9-2.6 ms with
/// this (and are 265 KB instead of 345 KB; a one-off timing inside `gyre train`).
pub fn to_parquet_numbers(batch: &RecordBatch) -> Result<Vec<u8>, DataError> {
    let mut props = parquet_properties().set_dictionary_enabled(false);
    for f in batch.schema().fields() {
        if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
            props = props.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(f.name().as_str()),
                true,
            );
        }
    }
    write_parquet(batch, props)
}

/// gyre's Parquet settings: zstd level 1, and gyre as the writer.
fn parquet_properties() -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid level"),
        ))
        .set_created_by("gyre".to_string())
}

fn write_parquet(
    batch: &RecordBatch,
    props: parquet::file::properties::WriterPropertiesBuilder,
) -> Result<Vec<u8>, DataError> {
    let parquet = |e: parquet::errors::ParquetError| DataError::Parquet(e.to_string());
    let mut buf = Vec::new();
    let mut w =
        ArrowWriter::try_new(&mut buf, batch.schema(), Some(props.build())).map_err(parquet)?;
    w.write(batch).map_err(parquet)?;
    w.close().map_err(parquet)?;
    Ok(buf)
}

/// Reads a stored table back into one batch.
pub fn from_parquet(bytes: bytes::Bytes) -> Result<RecordBatch, DataError> {
    from_parquet_columns(bytes, |_| true)
}

/// [`from_parquet`] of only the top-level columns whose names `keep` keeps, in file order: the
/// others are not decoded.
pub fn from_parquet_columns(
    bytes: bytes::Bytes,
    keep: impl Fn(&str) -> bool,
) -> Result<RecordBatch, DataError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| DataError::Parquet(e.to_string()))?;
    let kept: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| keep(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), kept);
    let reader = builder
        .with_projection(mask)
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

/// A table in the Arrow IPC file format, uncompressed, followed by the CRC-32 of those bytes
/// (4 bytes, little-endian): the form of a decoded table kept in the cache, which [`from_ipc`]
/// reads back without decoding (4.7 MB for Adult's 48,842 rows; `bench/turn_ab.py` shows the
/// loads of `train` and `diff` before and after).
pub fn to_ipc(batch: &RecordBatch) -> Result<Vec<u8>, DataError> {
    let ipc = |e: arrow_schema::ArrowError| DataError::Ipc(e.to_string());
    let mut buf = Vec::new();
    let mut w = arrow_ipc::writer::FileWriter::try_new(&mut buf, &batch.schema()).map_err(ipc)?;
    w.write(batch).map_err(ipc)?;
    w.finish().map_err(ipc)?;
    drop(w);
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

/// Reads a table written by [`to_ipc`]. Its arrays are views of `bytes` (no copy). The checksum
/// is checked first (the IPC reader trusts the offsets inside a block, so damaged bytes could
/// make it panic or read a wrong table): damaged bytes are an error. The arrays, written from
/// valid ones, are not validated again (see the comment inside).
pub fn from_ipc(bytes: bytes::Bytes) -> Result<RecordBatch, DataError> {
    let ipc = |e: arrow_schema::ArrowError| DataError::Ipc(e.to_string());
    let bad = |what: &str| DataError::Ipc(format!("not a cached table: {what}"));
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err(bad("too short"));
    };
    let stored = u32::from_le_bytes(bytes[body_len..].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..body_len]) != stored {
        return Err(bad("checksum mismatch"));
    }
    let buffer = arrow_buffer::Buffer::from(bytes.slice(..body_len));
    let len = buffer.len();
    if len < 10 {
        return Err(bad("too short"));
    }
    let trailer: [u8; 10] = buffer[len - 10..].try_into().expect("10 bytes");
    let footer_len = arrow_ipc::reader::read_footer_length(trailer).map_err(ipc)?;
    let footer_start = (len - 10)
        .checked_sub(footer_len)
        .ok_or_else(|| bad("footer longer than the file"))?;
    let footer = arrow_ipc::root_as_footer(&buffer[footer_start..len - 10])
        .map_err(|e| bad(&e.to_string()))?;
    let schema =
        arrow_ipc::convert::try_fb_to_schema(footer.schema().ok_or_else(|| bad("no schema"))?)
            .map_err(ipc)?;
    // The arrays are not validated again. SAFETY: the CRC-32 above matched, so these are the
    // bytes `to_ipc` wrote, from arrays that were valid (arrow-rs arrays are valid unless made
    // unsafely, which gyre never does); damage by accident is caught by the checksum. A file
    // forged to match it is out of scope: whoever can write `.gyre/derived` can rewrite the
    // project's database too. Validating them (dictionary keys in bounds, mostly) was about a
    // third of reading Adult's table: 0.9-1.0 -> 0.6-0.7 ms in one-off traced edits.
    let mut decoder = unsafe {
        arrow_ipc::reader::FileDecoder::new(Arc::new(schema), footer.version())
            .with_skip_validation(true)
    };
    let block_data = |b: &arrow_ipc::Block| {
        let (start, meta, body) = (b.offset(), i64::from(b.metaDataLength()), b.bodyLength());
        let end = start.checked_add(meta).and_then(|x| x.checked_add(body));
        match end {
            Some(end)
                if start >= 0 && meta >= 8 && body >= 0 && end as u64 <= footer_start as u64 =>
            {
                Ok(buffer.slice_with_length(start as usize, (meta + body) as usize))
            }
            _ => Err(bad("a block lies outside the file")),
        }
    };
    for b in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(b, &block_data(b)?).map_err(ipc)?;
    }
    let mut batches = Vec::new();
    for b in footer.recordBatches().iter().flatten() {
        if let Some(batch) = decoder.read_record_batch(b, &block_data(b)?).map_err(ipc)? {
            batches.push(batch);
        }
    }
    match batches.len() {
        1 => Ok(batches.pop().expect("one batch")),
        n => Err(bad(&format!("{n} record batches, written as one"))),
    }
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
pub fn row_ids(batch: &RecordBatch) -> &[u64] {
    batch
        .column_by_name(ROW_ID)
        .expect("stored tables have row_id")
        .as_primitive::<arrow_array::types::UInt64Type>()
        .values()
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

    #[test]
    fn number_tables_keep_dictionaries_for_strings_only() {
        let n = 5000;
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::UInt64, false),
                Field::new("label", DataType::Utf8, false),
                Field::new("score", DataType::Float64, false),
            ])),
            vec![
                Arc::new(arrow_array::UInt64Array::from_iter_values(0..n)) as ArrayRef,
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["yes", "no"][i as usize % 2]),
                )),
                Arc::new(arrow_array::Float64Array::from_iter_values(
                    (0..n).map(|i| (i as f64).sqrt()),
                )),
            ],
        )
        .unwrap();
        let bytes = to_parquet_numbers(&batch).unwrap();
        assert_eq!(from_parquet(bytes.clone().into()).unwrap(), batch);
        let meta =
            parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
                .unwrap();
        use parquet::file::reader::FileReader;
        let group = meta.metadata().row_group(0);
        let dictionary = |c: usize| group.column(c).dictionary_page_offset().is_some();
        assert_eq!(
            (dictionary(0), dictionary(1), dictionary(2)),
            (false, true, false)
        );
    }

    #[test]
    fn a_table_reads_back_from_ipc_equal_and_damage_is_an_error() {
        let strings = StringArray::from(vec![Some("x"), None, Some("y"), Some("x")]);
        let c = crate::infer::infer(&[Arc::new(strings) as ArrayRef], &Default::default());
        let num = Arc::new(arrow_array::Float64Array::from(vec![
            Some(1.5),
            None,
            Some(-2.0),
            Some(f64::NAN),
        ])) as ArrayRef;
        let batch = assemble(
            &[3, 5, 8, 13],
            &[Split::Train, Split::Holdout, Split::Train, Split::Train],
            vec![("c".into(), c.array), ("n".into(), num)],
        )
        .unwrap();
        let bytes = to_ipc(&batch).unwrap();
        assert_eq!(from_ipc(bytes.clone().into()).unwrap(), batch);
        // Truncated, or a footer damaged: errors, never a panic or a wrong table.
        for cut in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                from_ipc(bytes[..cut].to_vec().into()).is_err(),
                "cut at {cut}"
            );
        }
        // A flipped bit anywhere (a block header, the data, the footer) is caught by the
        // checksum before the reader sees an offset.
        for at in [8, bytes.len() / 3, bytes.len() / 2, bytes.len() - 12] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(from_ipc(damaged.into()).is_err(), "flip at {at}");
        }
    }
}
