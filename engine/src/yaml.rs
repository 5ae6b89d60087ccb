//! A YAML document as a tree whose every node remembers its line and column,
//! so that every validation error can point at the exact spot in the file.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a node starts in its file (both 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, 1-based.
    pub line: u32,
    /// Column, 1-based.
    pub col: u32,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it starts.
    pub pos: Pos,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false when it was quoted or a block scalar (then it is always a string).
    Scalar {
        /// The text.
        value: String,
        /// Unquoted.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (duplicates kept so that they can be reported).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// True for `null`, `~` and an empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A human word for the node's type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { value, plain: true } => match plain_scalar(value) {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                _ => "a string",
            },
            NodeKind::Scalar { .. } => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The node as JSON (YAML 1.2 core schema for plain scalars).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Scalar { value, plain: true } => plain_scalar(value),
            NodeKind::Scalar {
                value,
                plain: false,
            } => serde_json::Value::String(value.clone()),
            NodeKind::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            NodeKind::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    let key = match k.as_str() {
                        Some(s) => s.to_owned(),
                        None => k.to_json().to_string(),
                    };
                    map.insert(key, v.to_json());
                }
                serde_json::Value::Object(map)
            }
        }
    }

    /// Follow a path of mapping keys and sequence indices; returns the
    /// deepest node reached (so an error about a missing child points at its parent).
    pub fn locate(&self, path: &[PathSeg]) -> (&Node, Option<&Node>) {
        let mut node = self;
        let mut key_node = None;
        for seg in path {
            match (seg, &node.kind) {
                (PathSeg::Key(k), NodeKind::Map(entries)) => {
                    match entries
                        .iter()
                        .find(|(kn, _)| kn.as_str() == Some(k.as_str()))
                    {
                        Some((kn, vn)) => {
                            key_node = Some(kn);
                            node = vn;
                        }
                        None => break,
                    }
                }
                (PathSeg::Index(i), NodeKind::Seq(items)) => match items.get(*i) {
                    Some(item) => {
                        key_node = None;
                        node = item;
                    }
                    None => break,
                },
                _ => break,
            }
        }
        (node, key_node)
    }
}

/// One step into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A plain scalar under the YAML 1.2 core schema.
pub fn plain_scalar(value: &str) -> serde_json::Value {
    match value {
        "" | "~" | "null" | "Null" | "NULL" => serde_json::Value::Null,
        "true" | "True" | "TRUE" => serde_json::Value::Bool(true),
        "false" | "False" | "FALSE" => serde_json::Value::Bool(false),
        _ => {
            if let Ok(i) = value.parse::<i64>() {
                return serde_json::Value::from(i);
            }
            let looks_numeric = value
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
                && value.chars().any(|c| c.is_ascii_digit());
            if looks_numeric
                && let Some(n) = value
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
            {
                return serde_json::Value::Number(n);
            }
            serde_json::Value::String(value.to_owned())
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// Upper bound on nodes (after alias expansion): a "billion laughs" file is an error, not an OOM.
const MAX_NODES: usize = 2_000_000;

struct Builder {
    stack: Vec<(Node, Option<usize>)>,
    pending_key: Vec<Option<Node>>,
    docs: Vec<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    nodes: usize,
    error: Option<SyntaxError>,
}

fn pos_of(m: &Marker) -> Pos {
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: Option<usize>) {
        if let Some(a) = anchor.filter(|a| *a > 0) {
            self.anchors.insert(a, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, _)) => match &mut parent.kind {
                NodeKind::Seq(items) => items.push(node),
                NodeKind::Map(entries) => {
                    let slot = self.pending_key.last_mut();
                    if let Some(slot) = slot {
                        match slot.take() {
                            Some(key) => entries.push((key, node)),
                            None => *slot = Some(node),
                        }
                    }
                }
                NodeKind::Scalar { .. } => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = pos_of(&mark);
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.error = Some(SyntaxError {
                pos,
                message: format!(
                    "document too large (more than {MAX_NODES} nodes after expanding aliases)"
                ),
            });
            return;
        }
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = matches!(style, TScalarStyle::Plain);
                self.push_value(
                    Node {
                        kind: NodeKind::Scalar { value, plain },
                        pos,
                    },
                    Some(anchor),
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((
                    Node {
                        kind: NodeKind::Seq(Vec::new()),
                        pos,
                    },
                    Some(anchor),
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((
                    Node {
                        kind: NodeKind::Map(Vec::new()),
                        pos,
                    },
                    Some(anchor),
                ));
                self.pending_key.push(None);
            }
            Event::SequenceEnd => {
                if let Some((node, anchor)) = self.stack.pop() {
                    self.push_value(node, anchor);
                }
            }
            Event::MappingEnd => {
                self.pending_key.pop();
                if let Some((mut node, anchor)) = self.stack.pop() {
                    // Block mappings are reported at odd spots; their first key is where they start.
                    if let NodeKind::Map(entries) = &node.kind
                        && let Some((k, _)) = entries.first()
                    {
                        node.pos = k.pos;
                    }
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    self.nodes += count_nodes(&node);
                    if self.nodes > MAX_NODES {
                        self.error = Some(SyntaxError {
                            pos,
                            message: format!(
                                "document too large (more than {MAX_NODES} nodes after expanding aliases)"
                            ),
                        });
                        return;
                    }
                    node.pos = pos;
                    self.push_value(node, None);
                }
                None => {
                    self.error = Some(SyntaxError {
                        pos,
                        message: "unknown alias".into(),
                    })
                }
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parse one YAML document. An empty file is a null scalar at 1:1.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder {
        stack: Vec::new(),
        pending_key: Vec::new(),
        docs: Vec::new(),
        anchors: Default::default(),
        nodes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(src);
    if let Err(e) = parser.load(&mut builder, true) {
        return Err(SyntaxError {
            pos: pos_of(e.marker()),
            message: format!("YAML syntax error: {}", e.info()),
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    let mut docs = builder.docs;
    match docs.len() {
        0 => Ok(Node {
            kind: NodeKind::Scalar {
                value: String::new(),
                plain: true,
            },
            pos: Pos { line: 1, col: 1 },
        }),
        1 => Ok(docs.remove(0)),
        _ => Err(SyntaxError {
            pos: docs[1].pos,
            message: "expected one YAML document per pipeline file, found several".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a: 1\nb:\n  - x\n  - {c: d}\n").expect("parses");
        let NodeKind::Map(entries) = &n.kind else {
            panic!("map")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, col: 4 });
        let NodeKind::Seq(items) = &entries[1].1.kind else {
            panic!("seq")
        };
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
    }
}
