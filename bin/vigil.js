#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ (built by `npm run build`).
// The AWS SDK warns on Node 20 that its releases after the first week of January 2027 need Node 22.
// Vigil pins the SDK to exact versions that run on Node 20 (package.json; README "Runtime"), so the
// warning does not apply to it; the SDK's own switch turns it off unless the environment says otherwise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err); process.exitCode = 1; },
);
