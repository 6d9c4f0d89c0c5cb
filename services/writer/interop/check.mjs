// make interop: read the depthcap files that `depthcap import` made from
// Binance recordings with nodejs-polars and with DuckDB (@duckdb/node-api),
// the way SCHEMA.md tells users to (`<SYMBOL>/*.parquet` globs), and check
//
//   - the files on disk: one main file (+ .gaps.json) per (market, kind,
//     symbol, UTC receive day) that has depth frames, nothing else;
//   - row counts: the depth frames of that day in the recordings;
//   - column names, order and types exactly as SCHEMA.md promises (polars
//     dtypes, DuckDB types, and DuckDB's view of the Parquet schema:
//     REQUIRED/OPTIONAL and the TIMESTAMP(isAdjustedToUTC, MICROS) annotation);
//   - values against the raw frames: every row (or, with --every N, every
//     N-th row plus the last of each day): times, ids, symbol, null columns,
//     every level price and size == parseFloat(recorded string);
//   - polars and DuckDB agree on every value of every row they read.
//
// usage: node check.mjs --data DIR [--every N] FILE.rec.gz...
// Exit 0 when everything matches, 1 on any mismatch (each one names the
// file, row, column and both values), 2 on a usage or setup error.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------- arguments

function usage(msg) {
  if (msg) console.error(`interop: ${msg}`);
  console.error('usage: node check.mjs --data DIR [--every N] FILE.rec.gz...');
  process.exit(2);
}

let dataDir = null;
let every = 1;
const recFiles = [];
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--data') dataDir = a[++i];
    else if (a[i] === '--every') every = Number(a[++i]);
    else if (a[i].startsWith('-')) usage(`unknown flag ${a[i]}`);
    else recFiles.push(a[i]);
  }
  if (!dataDir || recFiles.length === 0) usage();
  if (!Number.isInteger(every) || every < 1) usage('--every must be a positive integer');
}

// Native modules: say clearly what is missing instead of a bare stack.
let pl, duck;
try {
  pl = require('nodejs-polars');
} catch (e) {
  console.error(`interop: cannot load nodejs-polars (native package nodejs-polars-linux-x64-gnu missing or unusable here; npm skips it when its "engines" do not accept this node ${process.version}): ${e.message}`);
  process.exit(2);
}
try {
  duck = await import('@duckdb/node-api');
} catch (e) {
  console.error(`interop: cannot load @duckdb/node-api (native @duckdb/node-bindings-linux-x64): ${e.message}`);
  process.exit(2);
}

// ------------------------------------------------------------- mismatches

const MAX_PRINTED = 30;
let mismatches = 0;
function mismatch(msg) {
  mismatches++;
  if (mismatches <= MAX_PRINTED) console.error(`MISMATCH ${msg}`);
  else if (mismatches === MAX_PRINTED + 1) console.error('MISMATCH ... (further mismatches counted, not printed)');
}

function show(v) {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (Array.isArray(v)) return `[${v.length} items]`;
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  } catch {
    return String(v);
  }
}

// ------------------------------------------------------- the raw recordings

const DAY_NS = 86_400_000_000_000n;
const LEVEL_COLS = ['bid_prices', 'bid_sizes', 'ask_prices', 'ask_sizes'];
const KIND_DIR = { diff: 'diff_orderbooks', partial: 'partial_orderbooks', snapshot: 'orderbooks' };

// The stream name's depth kind, as pkg/binance.ParseStreamName reads it:
// <sym>@depth[@Nms] diff, <sym>@depth<5|10|20>[@Nms] partial,
// <sym>@depthSnapshot snapshot (the recordings' REST wrapper).
function streamKind(stream) {
  const at = stream.indexOf('@');
  if (at < 0) return null;
  const rest = stream.slice(at + 1);
  if (rest === 'depth' || rest.startsWith('depth@')) return 'diff';
  if (rest === 'depthSnapshot') return 'snapshot';
  if (/^depth(5|10|20)(@|$)/.test(rest)) return 'partial';
  return null;
}

function dayOf(ns) {
  const d = new Date(Number((ns / DAY_NS) * 86_400_000n));
  return d.toISOString().slice(0, 10);
}

function id(v, what) {
  if (!Number.isSafeInteger(v)) throw new Error(`${what}: ${v} is not an integer JSON.parse reads exactly`);
  return BigInt(v);
}

function levels(list, what) {
  if (!Array.isArray(list)) throw new Error(`${what}: not a list`);
  const prices = [], sizes = [], rawP = [], rawS = [];
  for (const lv of list) {
    rawP.push(lv[0]); rawS.push(lv[1]);
    prices.push(parseFloat(lv[0])); sizes.push(parseFloat(lv[1]));
  }
  return { prices, sizes, rawP, rawS };
}

// The row a frame must become (SCHEMA.md, Columns), in column order.
function expectedRow(market, kind, ns, stream, d) {
  const futures = market === 'futures';
  const SYM = stream.slice(0, stream.indexOf('@')).toUpperCase();
  const ms = (v, what) => id(v, what) * 1000n;
  const r = { received_time: ns / 1000n };
  let bids, asks;
  if (kind === 'snapshot') {
    r.request_time = null; // recordings do not know it: "null if unknown"
    if (futures) { r.event_time = ms(d.E, 'E'); r.transaction_time = ms(d.T, 'T'); }
    r.last_update_id = id(d.lastUpdateId, 'lastUpdateId');
    r.limit = null; // nor the limit requested
    r.symbol = SYM;
    bids = levels(d.bids, 'bids'); asks = levels(d.asks, 'asks');
  } else if (kind === 'partial' && !futures) {
    r.event_time = null;
    r.symbol = SYM;
    r.first_update_id = null;
    r.final_update_id = id(d.lastUpdateId, 'lastUpdateId');
    bids = levels(d.bids, 'bids'); asks = levels(d.asks, 'asks');
  } else { // diff, USD-M partial: depthUpdate-shaped
    r.event_time = ms(d.E, 'E');
    if (futures) r.transaction_time = ms(d.T, 'T');
    r.symbol = d.s;
    r.first_update_id = id(d.U, 'U');
    r.final_update_id = id(d.u, 'u');
    if (futures) r.prev_final_update_id = id(d.pu, 'pu');
    bids = levels(d.b, 'b'); asks = levels(d.a, 'a');
  }
  r.bid_prices = bids.prices; r.bid_sizes = bids.sizes;
  r.ask_prices = asks.prices; r.ask_sizes = asks.sizes;
  // recorded strings, for messages
  r.raw = { ns: ns.toString(), bid_prices: bids.rawP, bid_sizes: bids.rawS, ask_prices: asks.rawP, ask_sizes: asks.rawS };
  return r;
}

// expected: "<market>/<kind_dir>/<SYMBOL>" -> Map(day -> [frame...]) where a
// frame is { ns, stream, data, src } in recording order.
const expected = new Map();
let rawFrames = 0, rawDepth = 0;
for (const file of recFiles) {
  const base = path.basename(file);
  const market = base.startsWith('spot_') ? 'spot' : base.startsWith('futures_') ? 'futures' : null;
  if (!market) usage(`${file}: name must start with spot_ or futures_`);
  const text = zlib.gunzipSync(fs.readFileSync(file)).toString('utf8');
  let lineNo = 0;
  for (const line of text.split('\n')) {
    lineNo++;
    if (line === '') continue;
    rawFrames++;
    const sp = line.indexOf(' ');
    const ns = BigInt(line.slice(0, sp));
    const json = line.slice(sp + 1);
    // cheap pre-filter: only depth frames are parsed
    const m = /^\{"stream":"([^"]*)"/.exec(json);
    if (!m) throw new Error(`${base}:${lineNo}: no stream name`);
    const kind = streamKind(m[1]);
    if (!kind) continue;
    rawDepth++;
    const frame = JSON.parse(json);
    const stream = frame.stream;
    const SYM = stream.slice(0, stream.indexOf('@')).toUpperCase();
    const key = `${market}/${KIND_DIR[kind]}/${SYM}`;
    if (!expected.has(key)) expected.set(key, { market, kind, symbol: SYM, days: new Map() });
    const days = expected.get(key).days;
    const day = dayOf(ns);
    if (!days.has(day)) days.set(day, []);
    days.get(day).push({ ns, stream, data: frame.data, src: `${base}:${lineNo}` });
  }
}

// -------------------------------------------------------------- the schema

// SCHEMA.md's columns per (market, kind): [name, schema type, nullable].
function schemaOf(market, kind) {
  const fut = market === 'futures';
  const TS = 'timestamp(us, UTC)', I64 = 'int64', I32 = 'int32', STR = 'string', LD = 'list<double>';
  const cols = [];
  const add = (n, t, nullable = false) => cols.push([n, t, nullable]);
  if (kind === 'snapshot') {
    add('request_time', TS, true); add('received_time', TS);
    if (fut) { add('event_time', TS); add('transaction_time', TS); }
    add('last_update_id', I64); add('limit', I32, true); add('symbol', STR);
  } else {
    const spotPartial = kind === 'partial' && !fut;
    add('received_time', TS); add('event_time', TS, spotPartial);
    if (fut) add('transaction_time', TS);
    add('symbol', STR); add('first_update_id', I64, spotPartial); add('final_update_id', I64);
    if (fut) add('prev_final_update_id', I64);
  }
  for (const c of LEVEL_COLS) add(c, LD);
  return cols;
}

const POLARS_TYPE = {
  'timestamp(us, UTC)': 'Datetime(us,UTC)', int64: 'Int64', int32: 'Int32', string: 'String', 'list<double>': 'List(Float64)',
};
const DUCK_TYPE = {
  'timestamp(us, UTC)': 'TIMESTAMP WITH TIME ZONE', int64: 'BIGINT', int32: 'INTEGER', string: 'VARCHAR', 'list<double>': 'DOUBLE[]',
};
const polarsType = (dt) => String(dt).replace(/DataType\(([^()]*(?:\([^()]*\))?)\)/g, '$1').replace(/DataType\((.*)\)/, '$1');

// ------------------------------------------------------------- the readers

// A reader returns, for a glob, { columns: [{name, type}], rows: [{file,
// fileRow, values: {col: value}}] } with values normalised to: bigint for
// timestamps (µs) and ints, string, number[] for levels, null for null.

const FILE_COL = '__file';

function readPolars(glob) {
  const df = pl.scanParquet(glob, { includeFilePaths: FILE_COL }).collectSync();
  const columns = df.columns.filter((c) => c !== FILE_COL).map((c) => ({ name: c, type: polarsType(df.schema[c]) }));
  const types = Object.fromEntries(columns.map((c) => [c.name, c.type]));
  // Exact integers: timestamps and int64 go through polars' own Int64 ->
  // Utf8 cast, never through a JS number or Date.
  const sel = [pl.col(FILE_COL)];
  for (const { name } of columns) {
    const t = types[name];
    if (t.startsWith('Datetime')) sel.push(pl.col(name).cast(pl.Int64).cast(pl.Utf8).alias(name));
    else if (t === 'Int64') sel.push(pl.col(name).cast(pl.Utf8).alias(name));
    else sel.push(pl.col(name));
  }
  const out = df.select(...sel);
  const arrays = {};
  for (const c of out.columns) arrays[c] = out.getColumn(c).toArray();
  const rows = [];
  const perFile = new Map();
  for (let i = 0; i < out.height; i++) {
    const file = arrays[FILE_COL][i];
    const n = perFile.get(file) ?? 0;
    perFile.set(file, n + 1);
    const values = {};
    for (const { name } of columns) {
      const t = types[name];
      let v = arrays[name][i];
      if (v === undefined) v = null;
      if (v !== null && (t.startsWith('Datetime') || t === 'Int64')) v = BigInt(v);
      else if (v !== null && t.startsWith('List')) v = Array.from(v, (x) => (x === undefined ? null : x));
      values[name] = v;
    }
    rows.push({ file, fileRow: n, values });
  }
  return { columns, rows };
}

let duckConn;
async function duckdbConn() {
  if (!duckConn) {
    // Offline: never try to fetch an extension (parquet is built in).
    const inst = await duck.DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
    duckConn = await inst.connect();
  }
  return duckConn;
}
const sqlStr = (s) => `'${s.replaceAll("'", "''")}'`;

async function readDuckDB(glob) {
  const c = await duckdbConn();
  // No ORDER BY: rows come in file order as a user sees them; file_row_number
  // proves that order.
  const r = await c.runAndReadAll(`SELECT * FROM read_parquet(${sqlStr(glob)}, filename = true, file_row_number = true)`);
  const names = r.columnNames();
  const ctypes = r.columnTypes().map((t) => t.toString());
  const columns = [];
  names.forEach((n, i) => { if (n !== 'filename' && n !== 'file_row_number') columns.push({ name: n, type: ctypes[i] }); });
  const cols = r.getColumns();
  const idx = Object.fromEntries(names.map((n, i) => [n, i]));
  const rows = [];
  const perFile = new Map();
  for (let i = 0; i < r.currentRowCount; i++) {
    const file = cols[idx.filename][i];
    const n = perFile.get(file) ?? 0;
    perFile.set(file, n + 1);
    const frn = cols[idx.file_row_number][i];
    if (BigInt(frn) !== BigInt(n)) mismatch(`duckdb: ${file} row ${n}: file_row_number ${frn}: rows do not come back in file order`);
    const values = {};
    for (const { name, type } of columns) {
      let v = cols[idx[name]][i];
      if (v === undefined) v = null;
      if (v !== null) {
        if (type === 'TIMESTAMP WITH TIME ZONE') v = v.micros;
        else if (type === 'BIGINT') v = BigInt(v);
        else if (type === 'DOUBLE[]') v = v.items.map((x) => (x === undefined ? null : x));
      }
      values[name] = v;
    }
    rows.push({ file, fileRow: n, values });
  }
  return { columns, rows };
}

async function duckParquetSchema(file) {
  const c = await duckdbConn();
  const r = await c.runAndReadAll(`SELECT name, repetition_type, logical_type, num_children FROM parquet_schema(${sqlStr(file)})`);
  return r.getRowObjectsJS();
}

async function duckKV(file) {
  const c = await duckdbConn();
  const r = await c.runAndReadAll(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata(${sqlStr(file)})`);
  return Object.fromEntries(r.getRowObjectsJS().map((x) => [x.k, x.v]));
}

async function duckCount(glob) {
  const c = await duckdbConn();
  const r = await c.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${sqlStr(glob)})`);
  return BigInt(r.getRows()[0][0]);
}

// --------------------------------------------------------------- checking

const stats = {
  polars: { files: 0, rows: 0, values: 0 },
  duckdb: { files: 0, rows: 0, values: 0 },
  agreed: 0,
};
let filesOK = 0, filesBad = 0;

function sameValue(a, b) {
  if (a === null || b === null) return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
    return true;
  }
  return typeof a === typeof b && Object.is(a, b);
}

// Compare one reader's row with the frame it must hold; counts values.
function checkRow(reader, rel, rowNo, got, want, cols) {
  let n = 0;
  for (const [name] of cols) {
    const g = got[name], w = want[name];
    if (LEVEL_COLS.includes(name)) {
      if (!Array.isArray(g)) { mismatch(`${reader}: ${rel} row ${rowNo} column ${name}: read ${show(g)}, recorded a list of ${w.length} (${want.src})`); n++; continue; }
      if (g.length !== w.length) { mismatch(`${reader}: ${rel} row ${rowNo} column ${name}: read ${g.length} levels, recorded ${w.length} (${want.src})`); n++; continue; }
      for (let i = 0; i < w.length; i++) {
        n++;
        if (!Object.is(g[i], w[i])) mismatch(`${reader}: ${rel} row ${rowNo} column ${name}[${i}]: read ${show(g[i])}, recorded "${want.raw[name][i]}" -> ${show(w[i])} (${want.src})`);
      }
    } else {
      n++;
      if (!sameValue(g, w)) {
        const extra = name === 'received_time' ? ` (recorded ns ${want.raw.ns})` : '';
        mismatch(`${reader}: ${rel} row ${rowNo} column ${name}: read ${show(g)}, expected ${show(w)}${extra} (${want.src})`);
      }
    }
  }
  return n;
}

function checkColumns(reader, rel, columns, cols, typeMap) {
  const gotNames = columns.map((c) => c.name).join(',');
  const wantNames = cols.map((c) => c[0]).join(',');
  if (gotNames !== wantNames) {
    mismatch(`${reader}: ${rel}: columns [${gotNames}], SCHEMA.md [${wantNames}]`);
    return false;
  }
  let ok = true;
  columns.forEach((c, i) => {
    const want = typeMap[cols[i][1]];
    if (c.type !== want) { ok = false; mismatch(`${reader}: ${rel} column ${c.name}: type ${c.type}, SCHEMA.md ${cols[i][1]} -> ${want}`); }
  });
  return ok;
}

// Parquet-level promises, through DuckDB's parquet_schema(): REQUIRED for
// SCHEMA.md's "null: no" columns, OPTIONAL for "yes", timestamps annotated
// TIMESTAMP(isAdjustedToUTC=true, unit=MICROS), levels are LIST of DOUBLE.
async function checkParquetSchema(abs, rel, cols) {
  const ps = await duckParquetSchema(abs);
  const top = new Map();
  // walk the flattened tree: root, then each column (lists have 2 levels below)
  let i = 1;
  while (i < ps.length) {
    const node = ps[i];
    top.set(node.name, node);
    i++;
    if (node.num_children) i += 2; // list -> repeated group -> element
  }
  for (const [name, type, nullable] of cols) {
    const node = top.get(name);
    if (!node) { mismatch(`parquet schema: ${rel}: column ${name} missing`); continue; }
    const rep = nullable ? 'OPTIONAL' : 'REQUIRED';
    if (node.repetition_type !== rep) mismatch(`parquet schema: ${rel} column ${name}: ${node.repetition_type}, SCHEMA.md null=${nullable ? 'yes' : 'no'} -> ${rep}`);
    if (type === 'timestamp(us, UTC)' && !/isAdjustedToUTC=1, unit=TimeUnit\(MILLIS=<null>, MICROS=MicroSeconds\(\), NANOS=<null>\)/.test(node.logical_type ?? ''))
      mismatch(`parquet schema: ${rel} column ${name}: logical type ${node.logical_type}, SCHEMA.md TIMESTAMP(isAdjustedToUTC=true, unit=MICROS)`);
    if (type === 'list<double>' && node.logical_type !== 'ListType()')
      mismatch(`parquet schema: ${rel} column ${name}: logical type ${node.logical_type}, SCHEMA.md list<double>`);
  }
}

const SUPP = /^(\d{4}-\d{2}-\d{2})(?:\.late(\d+))?\.parquet$/;

for (const [key, exp] of [...expected.entries()].sort(([a], [b]) => a.localeCompare(b))) {
  const dir = path.join(dataDir, key);
  const cols = schemaOf(exp.market, exp.kind);

  // Files on disk: a main file per day with frames, each with its manifest.
  const onDisk = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const parquet = onDisk.filter((f) => f.endsWith('.parquet'));
  const mains = parquet.filter((f) => SUPP.test(f) && !SUPP.exec(f)[2]).map((f) => f.slice(0, 10));
  const wantDays = [...exp.days.keys()].sort();
  if (mains.join(',') !== wantDays.join(',')) mismatch(`${key}: main files for days [${mains}], recordings have depth frames on [${wantDays}]`);
  for (const f of parquet) {
    if (!SUPP.test(f)) mismatch(`${key}/${f}: not a <period>[.lateN].parquet name`);
    if (!onDisk.includes(f.replace(/\.parquet$/, '.gaps.json'))) mismatch(`${key}/${f}: no .gaps.json manifest beside it`);
  }

  // Read the symbol's directory as SCHEMA.md says: <SYMBOL>/*.parquet.
  const glob = path.join(dir, '*.parquet');
  const byReader = {};
  for (const reader of ['polars', 'duckdb']) {
    let res;
    try {
      res = reader === 'polars' ? readPolars(glob) : await readDuckDB(glob);
    } catch (e) {
      mismatch(`${reader}: ${key}/*.parquet: read failed: ${e.message}`);
      continue;
    }
    checkColumns(reader, `${key}/*.parquet`, res.columns, cols, reader === 'polars' ? POLARS_TYPE : DUCK_TYPE);
    byReader[reader] = res;
  }
  for (const f of parquet)
    await checkParquetSchema(path.join(dir, f), `${key}/${f}`, cols).catch((e) => mismatch(`parquet schema: ${key}/${f}: ${e.message}`));

  for (const day of wantDays) {
    const frames = exp.days.get(day);
    const want = frames.map((f) => Object.assign(expectedRow(exp.market, exp.kind, f.ns, f.stream, f.data), { src: f.src }));
    const rel = `${key}/${day}.parquet`;
    const dayGlob = path.join(dir, `${day}*.parquet`);
    let dayOK = true;
    const before = mismatches;

    // Per-day glob counts, as in SCHEMA.md's examples.
    const pc = pl.scanParquet(dayGlob).select(pl.len()).collectSync().getColumn('len').toArray()[0];
    if (BigInt(pc) !== BigInt(want.length)) mismatch(`polars: ${key}/${day}*.parquet: ${pc} rows, recordings have ${want.length} depth frames`);
    const dc = await duckCount(dayGlob);
    if (dc !== BigInt(want.length)) mismatch(`duckdb: ${key}/${day}*.parquet: ${dc} rows, recordings have ${want.length} depth frames`);

    // File metadata promises (read through DuckDB).
    const main = path.join(dir, `${day}.parquet`);
    if (fs.existsSync(main)) {
      const kv = await duckKV(main);
      const files = parquet.filter((f) => f.startsWith(day));
      if (files.length === 1 && kv['depthcap.rows'] !== String(want.length)) mismatch(`metadata: ${rel}: depthcap.rows ${kv['depthcap.rows']}, recordings have ${want.length}`);
      for (const [k, v] of [['depthcap.schema_version', '1'], ['depthcap.market', exp.market], ['depthcap.kind', exp.kind], ['depthcap.symbol', exp.symbol], ['depthcap.period_start', `${day}T00:00:00Z`], ['depthcap.supplement', '0']])
        if (kv[k] !== v) mismatch(`metadata: ${rel}: ${k} ${show(kv[k])}, expected ${show(v)}`);
    }

    const rowsOf = {};
    for (const reader of Object.keys(byReader)) {
      // this day's rows: main file then supplements (sorted by receive time
      // when supplements exist, as SCHEMA.md tells users)
      let rows = byReader[reader].rows.filter((r) => path.basename(r.file).startsWith(day));
      if (new Set(rows.map((r) => r.file)).size > 1) rows = rows.map((r, i) => [r, i]).sort(([a, i], [b, j]) => (a.values.received_time < b.values.received_time ? -1 : a.values.received_time > b.values.received_time ? 1 : i - j)).map(([r]) => r);
      rowsOf[reader] = rows;
      const st = stats[reader];
      st.files++;
      st.rows += rows.length;
      if (rows.length !== want.length) {
        mismatch(`${reader}: ${rel}: ${rows.length} rows, recordings have ${want.length} depth frames`);
        dayOK = false;
        continue;
      }
      // sample: every `every`-th row, plus first and last
      for (let i = 0; i < rows.length; i++) {
        if (i % every !== 0 && i !== rows.length - 1) continue;
        const r = rows[i];
        st.values += checkRow(reader, `${path.relative(dataDir, r.file)}`, r.fileRow, r.values, want[i], cols);
      }
    }

    // The two readers agree on every value of every row.
    if (rowsOf.polars && rowsOf.duckdb) {
      const a = rowsOf.polars, b = rowsOf.duckdb;
      if (a.length !== b.length) mismatch(`${rel}: polars read ${a.length} rows, duckdb ${b.length}`);
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        if (a[i].file !== b[i].file || a[i].fileRow !== b[i].fileRow) {
          mismatch(`${rel} row ${i}: polars has it from ${a[i].file} row ${a[i].fileRow}, duckdb from ${b[i].file} row ${b[i].fileRow}`);
          continue;
        }
        for (const [name] of cols) {
          const x = a[i].values[name], y = b[i].values[name];
          stats.agreed += Array.isArray(x) ? x.length : 1;
          if (!sameValue(x, y)) {
            let where = '';
            if (Array.isArray(x) && Array.isArray(y) && x.length === y.length) {
              const k = x.findIndex((v, j) => !Object.is(v, y[j]));
              where = `[${k}]`;
              mismatch(`${path.relative(dataDir, a[i].file)} row ${a[i].fileRow} column ${name}${where}: polars ${show(x[k])}, duckdb ${show(y[k])}`);
            } else {
              mismatch(`${path.relative(dataDir, a[i].file)} row ${a[i].fileRow} column ${name}: polars ${show(x)}, duckdb ${show(y)}`);
            }
          }
        }
      }
    } else {
      dayOK = false;
    }
    if (dayOK && mismatches === before) filesOK++;
    else filesBad++;
  }
}

// ---------------------------------------------------------------- summary

const days = [...expected.values()].reduce((n, e) => n + e.days.size, 0);
console.log(`interop: recordings: ${recFiles.length} files, ${rawFrames} frames, ${rawDepth} depth frames -> ${days} sealed days in ${expected.size} symbol directories`);
for (const reader of ['polars', 'duckdb']) {
  const s = stats[reader];
  const which = every === 1 ? 'every row' : `every ${every}th row, first and last of each day`;
  console.log(`interop: ${reader.padEnd(6)} read ${s.files} days, ${s.rows} rows; ${s.values} values checked against the recordings (${which})`);
}
console.log(`interop: polars vs duckdb: ${stats.agreed} values compared (every row, every column, every level)`);
console.log(`interop: nodejs-polars ${require('nodejs-polars/package.json').version}, @duckdb/node-api ${require('@duckdb/node-api/package.json').version}, node ${process.version}`);
if (mismatches > 0) console.log(`interop: ${mismatches} mismatches`);
console.log(`interop: ${filesOK} passed, ${filesBad} failed`);
process.exit(mismatches > 0 ? 1 : 0);
