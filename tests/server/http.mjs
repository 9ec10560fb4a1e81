// http.mjs - a tiny curl for tests/server.sh (curl is not a build dependency):
//   node http.mjs METHOD URL [BODY|-] [OUTFILE]
// prints the HTTP status (0 if the connection failed); the body streams into OUTFILE.
import { createWriteStream } from "node:fs";

const [method, url, body, out] = process.argv.slice(2);
const file = out ? createWriteStream(out) : null;
try {
  const r = await fetch(url, { method, body: body && body !== "-" ? body : undefined,
                               headers: body && body !== "-" ? { "Content-Type": "application/json" } : {},
                               signal: AbortSignal.timeout(60000) });
  try {
    for await (const chunk of r.body) if (file) file.write(chunk);
  } catch { /* the server cut the stream: keep what came */ }
  console.log(r.status);
} catch {
  console.log(0);
}
if (file) file.end();
