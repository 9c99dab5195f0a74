/// `/docs`: a self-contained HTML page (no CDN) that renders the OpenAPI document with a small inline script.
enum DocsPage {
    static func html(openAPI: [UInt8], title: String) -> [UInt8] {
        // The document is embedded as JSON inside a script element; "</" is escaped so it cannot close the element.
        var embedded: [UInt8] = []
        embedded.reserveCapacity(openAPI.count)
        var previous: UInt8 = 0
        for byte in openAPI {
            if previous == UInt8(ascii: "<"), byte == UInt8(ascii: "/") { embedded.append(UInt8(ascii: "\\")) }
            embedded.append(byte)
            previous = byte
        }
        let escapedTitle = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return Array(head(escapedTitle).utf8) + embedded + Array(tail.utf8)
    }

    private static func head(_ title: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(title) API</title>
        <style>
        body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
        header{background:#17324d;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
        main{max-width:1000px;margin:0 auto;padding:18px 28px}
        h2{margin:28px 0 8px;font-size:18px;border-bottom:1px solid #d5dae0;padding-bottom:4px;text-transform:capitalize}
        details{background:#fff;border:1px solid #d5dae0;border-radius:6px;margin:8px 0}
        summary{cursor:pointer;padding:10px 14px;display:flex;gap:12px;align-items:center}
        .m{font:600 12px monospace;padding:3px 8px;border-radius:4px;color:#fff;min-width:44px;text-align:center}
        .GET{background:#2f7d32}.POST{background:#1f5fa8}.p{font-family:monospace;font-weight:600}.s{color:#59636e}
        .body{padding:4px 16px 14px;border-top:1px solid #eceff2}
        pre{background:#0f1720;color:#dde3ea;padding:10px;border-radius:5px;overflow:auto;font-size:12.5px;max-height:420px}
        table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d5dae0;padding:4px 8px;text-align:left;font-size:13.5px}
        code{background:#eceff2;padding:1px 4px;border-radius:3px}
        </style>
        </head>
        <body>
        <header><h1 id="title">\(title)</h1><p id="subtitle"></p></header>
        <main id="content"><noscript>This page needs JavaScript to render; the raw document is at <a href="/openapi.json">/openapi.json</a>.</noscript></main>
        <script type="application/json" id="openapi">
        """
    }

    private static let tail = """
        </script>
        <script>
        (function () {
          var doc = JSON.parse(document.getElementById('openapi').textContent);
          var root = document.getElementById('content');
          function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
          function resolve(schema) {
            if (schema && schema.$ref && schema.$ref.indexOf('#/components/schemas/') === 0) {
              return doc.components.schemas[schema.$ref.slice(21)] || schema;
            }
            return schema;
          }
          function expand(schema, depth) {
            if (depth > 6 || schema === null || typeof schema !== 'object') return schema;
            var s = resolve(schema), out = Array.isArray(s) ? [] : {};
            for (var k in s) out[k] = (k === '$ref') ? s[k] : expand(s[k], depth + 1);
            return out;
          }
          document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
          document.getElementById('subtitle').textContent = doc.info.description || '';
          var groups = {};
          Object.keys(doc.paths).forEach(function (path) {
            Object.keys(doc.paths[path]).forEach(function (method) {
              var op = doc.paths[path][method];
              var tag = (op.tags && op.tags[0]) || 'default';
              (groups[tag] = groups[tag] || []).push({ path: path, method: method.toUpperCase(), op: op });
            });
          });
          Object.keys(groups).forEach(function (tag) {
            root.appendChild(el('h2', null, tag));
            groups[tag].forEach(function (entry) {
              var d = el('details'), s = el('summary');
              s.appendChild(el('span', 'm ' + entry.method, entry.method));
              s.appendChild(el('span', 'p', entry.path));
              s.appendChild(el('span', 's', entry.op.summary || ''));
              d.appendChild(s);
              var body = el('div', 'body');
              if (entry.op.description) body.appendChild(el('p', null, entry.op.description));
              var rb = entry.op.requestBody;
              if (rb && rb.content) {
                Object.keys(rb.content).forEach(function (type) {
                  body.appendChild(el('h4', null, 'Request body (' + type + ')'));
                  body.appendChild(el('pre', null, JSON.stringify(expand(rb.content[type].schema, 0), null, 2)));
                });
              }
              var table = el('table'), header = el('tr');
              header.appendChild(el('th', null, 'Status')); header.appendChild(el('th', null, 'Meaning')); header.appendChild(el('th', null, 'Content'));
              table.appendChild(header);
              Object.keys(entry.op.responses || {}).forEach(function (code) {
                var r = entry.op.responses[code], tr = el('tr');
                tr.appendChild(el('td', null, code)); tr.appendChild(el('td', null, r.description || ''));
                tr.appendChild(el('td', null, Object.keys(r.content || {}).join(', ')));
                table.appendChild(tr);
              });
              body.appendChild(el('h4', null, 'Responses'));
              body.appendChild(table);
              d.appendChild(body);
              root.appendChild(d);
            });
          });
        })();
        </script>
        </body>
        </html>

        """
}
