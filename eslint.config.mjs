// ESLint for the web page's JavaScript (v1op_pb/gateway/ui/), run by `make lint`. ESLint
// and its packages are installed by the Makefile into .tools/eslint (like buf), outside any
// package.json, so they are imported here by path.
import js from "./.tools/eslint/node_modules/@eslint/js/src/index.js";
import globals from "./.tools/eslint/node_modules/globals/index.js";

// What the page promises, made rules: server strings reach the document as text only, and
// the token is never logged nor kept beyond the tab.
const NO_HTML = "build elements with h()/textContent: server strings must never be parsed as HTML";

export default [
  js.configs.recommended,
  {
    files: ["v1op_pb/gateway/ui/**/*.js"],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: globals.browser,
    },
    rules: {
      eqeqeq: "error",
      "no-var": "error",
      "prefer-const": "error",
      "no-console": "error",
      "no-eval": "error",
      "no-implied-eval": "error",
      "no-new-func": "error",
      "no-script-url": "error",
      "no-shadow": "error",
      "no-unused-vars": ["error", { args: "after-used" }],
      "no-restricted-properties": [
        "error",
        { property: "innerHTML", message: NO_HTML },
        { property: "outerHTML", message: NO_HTML },
        { property: "insertAdjacentHTML", message: NO_HTML },
        { property: "write", object: "document", message: NO_HTML },
        { property: "writeln", object: "document", message: NO_HTML },
      ],
      "no-restricted-globals": [
        "error",
        { name: "localStorage", message: "the token lives in sessionStorage only" },
      ],
    },
  },
];
