//! A fitted model as an ONNX graph, for tools outside gyre (onnxruntime and the like).
//!
//! Every graph takes one input, `features`: a double tensor `[N, F]` with the model's features
//! in its training order, a categorical feature given as its category code (an index into the
//! schema's sorted category list) and a missing value (or an unseen category) as NaN. It gives
//! one output: `probabilities` (`[N, classes]`, gyre's class order; binary included) or
//! `prediction` (`[N, 1]`, regression). Everything is computed in double, so the outputs are
//! gyre's own predictions to rounding (trees: the same sums in the same order).
//!
//! Trees use `ai.onnx.ml` opset 5's `TreeEnsemble`, the one tree operator with double
//! thresholds and leaf values, category sets (`BRANCH_MEMBER`) and a missing-value direction per
//! node; the older `TreeEnsembleClassifier`/`Regressor` sum in float. The linear model is a
//! handful of standard operators (opset 21).
//!
//! The file is written by a small protobuf writer (`proto`) and the few ONNX messages here,
//! their field numbers taken from `onnx.proto`, instead of prost and its code generation: the
//! messages are nine, written and never read, and a generated crate (plus protoc or a vendored
//! `.proto` at build time) would cost more build time and code than these two hundred lines.

mod proto;

use crate::Task;
use proto::Writer;

/// ONNX IR version 10 (ONNX 1.16), the first with `ai.onnx.ml` opset 5.
pub const IR_VERSION: i64 = 10;
/// The default domain's opset the graphs are written against.
pub const OPSET: i64 = 21;
/// The `ai.onnx.ml` opset (`TreeEnsemble` is new in 5).
pub const ML_OPSET: i64 = 5;
pub const ML_DOMAIN: &str = "ai.onnx.ml";
/// The graph's one input.
pub const INPUT: &str = "features";

/// The name of the graph's one output for a task.
pub fn output_name(task: Task) -> &'static str {
    match task {
        Task::Binary | Task::Multiclass { .. } => "probabilities",
        Task::Regression => "prediction",
    }
}

/// Width of the output: one probability per class (two for binary), one value for regression.
pub fn output_width(task: Task) -> usize {
    match task {
        Task::Binary => 2,
        Task::Multiclass { classes } => classes,
        Task::Regression => 1,
    }
}

/// A model ready to write: its graph, the opsets it uses, and what the caller adds to it.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    pub graph: Graph,
    /// `(domain, version)`; `""` is the default domain.
    pub opsets: Vec<(String, i64)>,
    pub doc: String,
    /// Key-value pairs stored in the model (`metadata_props`).
    pub metadata: Vec<(String, String)>,
}

impl OnnxModel {
    /// The model as ONNX bytes (a serialized `ModelProto`).
    pub fn to_bytes(&self) -> Vec<u8> {
        // ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
        // opset_import 8 (OperatorSetIdProto: domain 1, version 2), metadata_props 14
        // (StringStringEntryProto: key 1, value 2).
        let mut w = Writer::new();
        w.int(1, IR_VERSION);
        w.string(2, "gyre");
        w.string(3, env!("CARGO_PKG_VERSION"));
        if !self.doc.is_empty() {
            w.string(6, &self.doc);
        }
        w.message(7, |g| self.graph.write(g));
        for (domain, version) in &self.opsets {
            w.message(8, |o| {
                o.string(1, domain);
                o.int(2, *version);
            });
        }
        for (k, v) in &self.metadata {
            w.message(14, |e| {
                e.string(1, k);
                e.string(2, v);
            });
        }
        w.into_bytes()
    }
}

/// Element types (TensorProto.DataType) the graphs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ElemType {
    Uint8 = 2,
    Int64 = 7,
    Double = 11,
}

/// A constant tensor's values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TensorData {
    Double(Vec<f64>),
    Int64(Vec<i64>),
    Uint8(Vec<u8>),
}

impl TensorData {
    fn elem_type(&self) -> ElemType {
        match self {
            TensorData::Double(_) => ElemType::Double,
            TensorData::Int64(_) => ElemType::Int64,
            TensorData::Uint8(_) => ElemType::Uint8,
        }
    }

    fn len(&self) -> usize {
        match self {
            TensorData::Double(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Uint8(v) => v.len(),
        }
    }

    /// Little-endian, fixed width: the `raw_data` form.
    fn raw(&self) -> Vec<u8> {
        match self {
            TensorData::Double(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Int64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::Uint8(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    name: String,
    dims: Vec<i64>,
    data: TensorData,
}

impl Tensor {
    /// A one-dimensional tensor of the values.
    pub(crate) fn vector(data: TensorData) -> Tensor {
        Tensor {
            name: String::new(),
            dims: vec![data.len() as i64],
            data,
        }
    }

    fn write(&self, w: &mut Writer) {
        // TensorProto: dims 1, data_type 2, name 8, raw_data 9.
        w.ints(1, &self.dims);
        w.int(2, self.data.elem_type() as i64);
        if !self.name.is_empty() {
            w.string(8, &self.name);
        }
        w.bytes(9, &self.data.raw());
    }
}

/// A node attribute's value.
#[derive(Clone, Debug)]
pub(crate) enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Tensor(Tensor),
}

#[derive(Clone, Debug)]
struct Node {
    op: &'static str,
    domain: &'static str,
    inputs: Vec<String>,
    output: String,
    attrs: Vec<(&'static str, Attr)>,
}

impl Node {
    fn write(&self, w: &mut Writer) {
        // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
        for i in &self.inputs {
            w.string(1, i);
        }
        w.string(2, &self.output);
        w.string(3, &self.output);
        w.string(4, self.op);
        for (name, a) in &self.attrs {
            // AttributeProto: name 1, i 3, t 5, ints 8, type 20 (INT 2, TENSOR 4, INTS 7).
            w.message(5, |w| {
                w.string(1, name);
                match a {
                    Attr::Int(v) => {
                        w.int(20, 2);
                        w.int(3, *v);
                    }
                    Attr::Tensor(t) => {
                        w.int(20, 4);
                        w.message(5, |m| t.write(m));
                    }
                    Attr::Ints(vs) => {
                        w.int(20, 7);
                        w.ints(8, vs);
                    }
                }
            });
        }
        if !self.domain.is_empty() {
            w.string(7, self.domain);
        }
    }
}

/// A graph input or output: a double tensor `[N, width]`.
#[derive(Clone, Debug)]
struct Value {
    name: String,
    width: usize,
}

impl Value {
    fn write(&self, w: &mut Writer) {
        // ValueInfoProto: name 1, type 2. TypeProto: tensor_type 1. TypeProto.Tensor:
        // elem_type 1, shape 2. TensorShapeProto: dim 1. Dimension: dim_value 1, dim_param 2.
        w.string(1, &self.name);
        w.message(2, |t| {
            t.message(1, |tt| {
                tt.int(1, ElemType::Double as i64);
                tt.message(2, |s| {
                    s.message(1, |d| d.string(2, "N"));
                    s.message(1, |d| d.int(1, self.width as i64));
                });
            });
        });
    }
}

/// A graph under construction: nodes in the order added (so topologically sorted), constants
/// as initializers, and value names made up as it goes.
#[derive(Clone, Debug)]
pub struct Graph {
    name: String,
    nodes: Vec<Node>,
    initializers: Vec<Tensor>,
    inputs: Vec<Value>,
    outputs: Vec<Value>,
    names: usize,
}

impl Graph {
    /// A graph named `name` taking `features` (`[N, width]` doubles).
    pub(crate) fn new(name: &str, width: usize) -> Graph {
        Graph {
            name: name.to_string(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: vec![Value {
                name: INPUT.to_string(),
                width,
            }],
            outputs: Vec::new(),
            names: 0,
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.names += 1;
        format!("{hint}_{}", self.names)
    }

    /// A constant of the given shape; returns its name.
    pub(crate) fn constant(&mut self, hint: &str, dims: &[i64], data: TensorData) -> String {
        debug_assert_eq!(dims.iter().product::<i64>(), data.len() as i64);
        let name = self.fresh(hint);
        self.initializers.push(Tensor {
            name: name.clone(),
            dims: dims.to_vec(),
            data,
        });
        name
    }

    /// A node of the default domain with one output; returns the output's name.
    pub(crate) fn op(
        &mut self,
        op: &'static str,
        inputs: &[&str],
        attrs: Vec<(&'static str, Attr)>,
    ) -> String {
        self.op_in("", op, inputs, attrs)
    }

    /// A node of `domain` with one output; returns the output's name.
    pub(crate) fn op_in(
        &mut self,
        domain: &'static str,
        op: &'static str,
        inputs: &[&str],
        attrs: Vec<(&'static str, Attr)>,
    ) -> String {
        let output = self.fresh(&op.to_lowercase());
        self.nodes.push(Node {
            op,
            domain,
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            output: output.clone(),
            attrs,
        });
        output
    }

    /// Declares `value` the graph output `name` (`[N, width]` doubles), through an Identity.
    fn output(&mut self, value: &str, name: &str, width: usize) {
        self.nodes.push(Node {
            op: "Identity",
            domain: "",
            inputs: vec![value.to_string()],
            output: name.to_string(),
            attrs: Vec::new(),
        });
        self.outputs.push(Value {
            name: name.to_string(),
            width,
        });
    }

    /// Turns raw scores (`[N, outputs]`) into the task's output, as `objective::transform` does:
    /// the sigmoid for binary (then both classes' probabilities), softmax for multiclass.
    pub(crate) fn finish(mut self, task: Task, raw: &str, opsets: Vec<(String, i64)>) -> OnnxModel {
        let out = match task {
            Task::Binary => {
                let p = self.op("Sigmoid", &[raw], vec![]);
                let one = self.constant("one", &[1], TensorData::Double(vec![1.0]));
                let q = self.op("Sub", &[&one, &p], vec![]);
                self.op("Concat", &[&q, &p], vec![("axis", Attr::Int(1))])
            }
            Task::Multiclass { .. } => self.op("Softmax", &[raw], vec![("axis", Attr::Int(1))]),
            Task::Regression => raw.to_string(),
        };
        self.output(&out, output_name(task), output_width(task));
        OnnxModel {
            graph: self,
            opsets,
            doc: String::new(),
            metadata: Vec::new(),
        }
    }

    fn write(&self, w: &mut Writer) {
        // GraphProto: node 1, name 2, initializer 5, input 11, output 12.
        for n in &self.nodes {
            w.message(1, |m| n.write(m));
        }
        w.string(2, &self.name);
        for t in &self.initializers {
            w.message(5, |m| t.write(m));
        }
        for v in &self.inputs {
            w.message(11, |m| v.write(m));
        }
        for v in &self.outputs {
            w.message(12, |m| v.write(m));
        }
    }
}

/// The opsets a graph of only standard operators imports.
pub(crate) fn standard_opsets() -> Vec<(String, i64)> {
    vec![(String::new(), OPSET)]
}

/// The opsets a tree graph imports.
pub(crate) fn ml_opsets() -> Vec<(String, i64)> {
    vec![(String::new(), OPSET), (ML_DOMAIN.to_string(), ML_OPSET)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole model's bytes start with the IR version and end with the opsets and metadata;
    /// a double constant is its little-endian bytes.
    #[test]
    fn a_model_is_written_field_by_field() {
        let mut g = Graph::new("g", 1);
        let c = g.constant("c", &[1], TensorData::Double(vec![0.5]));
        let raw = g.op("Add", &[INPUT, &c], vec![]);
        let mut m = g.finish(Task::Regression, &raw, standard_opsets());
        m.metadata.push(("k".into(), "v".into()));
        let b = m.to_bytes();
        assert_eq!(&b[..2], [0x08, IR_VERSION as u8]);
        // metadata_props (14): key "k", value "v".
        assert!(b.ends_with(&[0x72, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v']));
        // opset_import (8): domain "", version 21.
        let opset = [0x42, 0x04, 0x0a, 0x00, 0x10, OPSET as u8];
        assert!(b.windows(opset.len()).any(|w| w == opset));
        let half = 0.5f64.to_le_bytes();
        assert!(b.windows(8).any(|w| w == half));
        assert!(b.windows(10).any(|w| w == b"prediction"));
    }
}
