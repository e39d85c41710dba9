"""Tree-sitter queries finding definitions, per language.

Each pattern captures the definition node under its kind (@function, @class, ...) and its name as
@name. Where two patterns match the same node, the earlier pattern wins, so specific patterns
come first. @impl marks a Rust impl block: a container for methods, not a symbol itself.
"""

from __future__ import annotations

_JS_COMMON = """
(function_declaration name: (_) @name) @function
(generator_function_declaration name: (_) @name) @function
(method_definition name: (_) @name) @method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @function
(program (lexical_declaration (variable_declarator name: (identifier) @name) @constant))
(program (export_statement declaration:
    (lexical_declaration (variable_declarator name: (identifier) @name) @constant)))
"""

_TS_EXTRA = """
(abstract_class_declaration name: (_) @name) @class
(interface_declaration name: (_) @name) @interface
(enum_declaration name: (_) @name) @enum
(type_alias_declaration name: (_) @name) @type
(method_signature name: (_) @name) @method
(abstract_method_signature name: (_) @name) @method
(function_signature name: (_) @name) @function
"""

DEFINITION_QUERIES: dict[str, str] = {
    "python": """
(function_definition name: (identifier) @name) @function
(class_definition name: (identifier) @name) @class
(module (expression_statement (assignment left: (identifier) @name) @constant))
""",
    "javascript": _JS_COMMON + "(class_declaration name: (_) @name) @class\n",
    "typescript": _JS_COMMON + _TS_EXTRA + "(class_declaration name: (_) @name) @class\n",
    "tsx": _JS_COMMON + _TS_EXTRA + "(class_declaration name: (_) @name) @class\n",
    "go": """
(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name type: (struct_type)) @struct
(type_spec name: (type_identifier) @name type: (interface_type)) @interface
(type_spec name: (type_identifier) @name) @type
(source_file (const_declaration (const_spec name: (identifier) @name) @constant))
""",
    "rust": """
(function_item name: (identifier) @name) @function
(function_signature_item name: (identifier) @name) @function
(struct_item name: (type_identifier) @name) @struct
(enum_item name: (type_identifier) @name) @enum
(union_item name: (type_identifier) @name) @struct
(trait_item name: (type_identifier) @name) @trait
(type_item name: (type_identifier) @name) @type
(impl_item type: (_) @name) @impl
(source_file (const_item name: (identifier) @name) @constant)
(source_file (static_item name: (identifier) @name) @constant)
""",
    "java": """
(class_declaration name: (identifier) @name) @class
(record_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(annotation_type_declaration name: (identifier) @name) @interface
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @constructor
""",
}

# Node kinds whose text counts as an identifier a symbol uses (attribute and field names too).
IDENTIFIER_KINDS: tuple[str, ...] = (
    "identifier",
    "property_identifier",
    "shorthand_property_identifier",
    "field_identifier",
    "type_identifier",
    "package_identifier",
)

COMMENT_KINDS = frozenset(("comment", "line_comment", "block_comment"))

# Nodes that wrap a definition: its leading comment sits before the wrapper.
WRAPPER_KINDS = frozenset(
    ("export_statement", "lexical_declaration", "type_declaration", "const_declaration")
)

# Nodes skipped between a definition and its leading comment (Rust attributes, #[derive]).
BETWEEN_COMMENT_KINDS = frozenset(("attribute_item",))

CONTAINER_KINDS = frozenset(("class", "struct", "interface", "enum", "trait", "impl"))
