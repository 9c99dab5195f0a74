// Node.js peer for the edge benchmark: plain `http` + JSON.parse, one worker per core (cluster), doing the same
// small /compute operations the gateway answers (multiply, add, transpose, sum) in JavaScript.
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');
const port = Number(process.argv[2] || 8091);

function compute(req) {
  const data = req.data, p = req.parameters || {};
  switch (req.operation) {
    case 'multiply': return data.map(r => r.map(x => x * p.factor));
    case 'add': return data.map((r, i) => r.map((x, j) => x + p.other[i][j]));
    case 'transpose': return data[0].map((_, j) => data.map(r => r[j]));
    case 'sum': return data.reduce((s, r) => s + r.reduce((a, b) => a + b, 0), 0);
    default: throw new Error('unknown operation');
  }
}

if (cluster.isPrimary) {
  for (let i = 0; i < os.availableParallelism(); i++) cluster.fork();
} else {
  http.createServer((req, res) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks));
        const out = JSON.stringify({ result: compute(body), operation: body.operation, engine: 'node' });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(out);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ detail: String(e) }));
      }
    });
  }).listen(port, '127.0.0.1');
}
