// Lint for the whole repository (`npm run lint`): typescript-eslint's type-aware recommended set, plus the
// rules that catch real bugs in async Node code. Type information comes from tsconfig.test.json, which covers
// every folder that holds TypeScript.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bench/radar-corpus/traces/", "**/*.js"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: "./tsconfig.test.json", tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A promise nobody awaits or catches hides its failure; `void` marks the ones that are fire-and-forget on purpose.
      // node:test's test()/describe() return promises the runner itself awaits.
      "@typescript-eslint/no-floating-promises": ["error", { allowForKnownSafeCalls: [{ from: "package", package: "node:test", name: ["test", "it", "describe", "suite", "before", "after", "beforeEach", "afterEach"] }] }],
      // An async callback where a sync one is expected (event emitters, timers) drops its rejection.
      "@typescript-eslint/no-misused-promises": "error",
      // Only Error objects carry a stack to the log.
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/prefer-promise-reject-errors": "error",
      // An async method with no await is how this codebase keeps an interface's promise contract (a throw becomes a rejection).
      "@typescript-eslint/require-await": "off",
      // `_name` marks a binding kept on purpose (a destructured field left out, an unused callback argument).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true }],
    },
  },
  {
    // The duty console runs in the browser: its own project (DOM types, Preact's JSX) gives the type information.
    files: ["relay/console/src/**/*.ts", "relay/console/src/**/*.tsx"],
    languageOptions: {
      parserOptions: { project: "./relay/console/tsconfig.json", tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    // Tests read parsed JSON and protocol frames on purpose and assert on the result: the any-tracking
    // rules would flag every such read without finding a bug there.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-enum-comparison": "off",
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
);
