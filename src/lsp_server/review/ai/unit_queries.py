"""Tree-sitter queries that split a file into review units, per language.

Captures: @function (a function, or a method when it sits directly in a class body), @class (a
container of methods, with its @body), @scope (a namespace-like block whose members are split
as top-level ones are: Rust `mod`, TypeScript `namespace`, with its @body), @import (grouped
into blocks of their own), @name, and Go's method @receiver. Patterns name the outermost node a
definition occupies (decorators, `export`), so the walk can look each statement up directly.
"""

from __future__ import annotations

_FUNCTION_VALUE = "[(arrow_function) (function_expression) (generator_function)]"

_JS_COMMON = f"""
(function_declaration name: (_) @name) @function
(generator_function_declaration name: (_) @name) @function
(export_statement declaration: [
    (function_declaration name: (_) @name)
    (generator_function_declaration name: (_) @name)]) @function
(lexical_declaration (variable_declarator name: (identifier) @name value: {_FUNCTION_VALUE})) @function
(variable_declaration (variable_declarator name: (identifier) @name value: {_FUNCTION_VALUE})) @function
(export_statement declaration: (lexical_declaration
    (variable_declarator name: (identifier) @name value: {_FUNCTION_VALUE}))) @function
(method_definition name: (_) @name) @function
(class_declaration name: (_) @name body: (class_body) @body) @class
(export_statement declaration: (class_declaration name: (_) @name body: (class_body) @body)) @class
(import_statement) @import
"""

_TS_EXTRA = f"""
(public_field_definition name: (_) @name value: {_FUNCTION_VALUE}) @function
(abstract_class_declaration name: (_) @name body: (class_body) @body) @class
(export_statement declaration:
    (abstract_class_declaration name: (_) @name body: (class_body) @body)) @class
(expression_statement (internal_module name: (_) @name body: (statement_block) @body)) @scope
(export_statement declaration: (internal_module name: (_) @name body: (statement_block) @body)) @scope
"""

UNIT_QUERIES: dict[str, str] = {
    "python": """
(function_definition name: (identifier) @name) @function
(decorated_definition definition: (function_definition name: (identifier) @name)) @function
(class_definition name: (identifier) @name body: (block) @body) @class
(decorated_definition definition:
    (class_definition name: (identifier) @name body: (block) @body)) @class
[(import_statement) (import_from_statement) (future_import_statement)] @import
""",
    "javascript": _JS_COMMON
    + f"(field_definition property: (_) @name value: {_FUNCTION_VALUE}) @function\n",
    "typescript": _JS_COMMON + _TS_EXTRA,
    "tsx": _JS_COMMON + _TS_EXTRA,
    "go": """
(function_declaration name: (identifier) @name) @function
(method_declaration
    receiver: (parameter_list (parameter_declaration type: [
        (type_identifier) @receiver
        (pointer_type (type_identifier) @receiver)
        (generic_type type: (type_identifier) @receiver)
        (pointer_type (generic_type type: (type_identifier) @receiver))]))
    name: (field_identifier) @name) @function
(method_declaration name: (field_identifier) @name) @function
[(package_clause) (import_declaration)] @import
""",
    "rust": """
(function_item name: (identifier) @name) @function
(impl_item type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)]
  body: (declaration_list) @body) @class
(trait_item name: (type_identifier) @name body: (declaration_list) @body) @class
(mod_item name: (identifier) @name body: (declaration_list) @body) @scope
[(use_declaration) (extern_crate_declaration) (mod_item !body)] @import
""",
}

# Calls (and constructions): a unit's callees weigh more than the names it merely mentions.
CALL_QUERIES: dict[str, str] = {
    "python": "(call function: [(identifier) @call (attribute attribute: (identifier) @call)])",
    "javascript": """
(call_expression function: [(identifier) @call (member_expression property: (property_identifier) @call)])
(new_expression constructor: [(identifier) @call (member_expression property: (property_identifier) @call)])
""",
    "go": """
(call_expression function: [(identifier) @call (selector_expression field: (field_identifier) @call)])
""",
    "rust": """
(call_expression function: [
    (identifier) @call
    (field_expression field: (field_identifier) @call)
    (scoped_identifier name: (identifier) @call)])
(macro_invocation macro: (identifier) @call)
""",
}
CALL_QUERIES["typescript"] = CALL_QUERIES["tsx"] = CALL_QUERIES["javascript"]

# Nodes that belong to the definition right below them when no blank line separates them.
LEADING_KINDS = frozenset(
    ("comment", "line_comment", "block_comment", "attribute_item", "decorator")
)
