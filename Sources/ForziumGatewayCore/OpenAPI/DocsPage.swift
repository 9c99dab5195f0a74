/// `/docs`: a self-contained HTML page (no CDN, no external file) that renders the OpenAPI document and lets a person
/// try every route from the browser: description, parameters, request and response schemas, an editable example
/// body (one per operation where the schema is a union), a Send button that calls the gateway and shows status,
/// headers and body — an NDJSON stream as it arrives — and an API-key field when the gateway requires keys.
///
/// The page is rendered once, at start-up. The document travels inside a `<script type="application/json">` element
/// with every `<` escaped, so no string in it can end the element; the script builds the page with DOM calls and
/// `textContent` only (nothing from the document is parsed as HTML, except the small Markdown subset, which is
/// escaped first).
enum DocsPage {
    static func html(openAPI: [UInt8], title: String, apiKeysRequired: Bool) -> [UInt8] {
        var embedded: [UInt8] = []
        embedded.reserveCapacity(openAPI.count + 64)
        for byte in openAPI {
            if byte == UInt8(ascii: "<") {
                embedded.append(contentsOf: Array(#"\u003c"#.utf8))
            } else {
                embedded.append(byte)
            }
        }
        let escapedTitle = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        let settings = #"{"apiKeysRequired":\#(apiKeysRequired)}"#
        return Array(head(escapedTitle, settings: settings).utf8) + embedded + Array(tail.utf8)
    }

    private static func head(_ title: String, settings: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <title>\(title) API</title>
        <style>
        :root{--line:#d5dae0;--soft:#eceff2;--ink:#1d232a;--dim:#59636e}
        *{box-sizing:border-box}
        body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:var(--ink);background:#f6f7f9}
        header{background:#17324d;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
        header .d{margin:6px 0 0;opacity:.9;max-width:980px}header code{background:#2b4a69;color:#fff}
        #auth{margin-top:10px;display:flex;gap:8px;align-items:center}[hidden]{display:none!important}#auth input{width:320px}
        main{max-width:1040px;margin:0 auto;padding:18px 28px}
        h2{margin:28px 0 8px;font-size:18px;border-bottom:1px solid var(--line);padding-bottom:4px;text-transform:capitalize}
        h4{margin:14px 0 6px}
        details.op{background:#fff;border:1px solid var(--line);border-radius:6px;margin:8px 0}
        details.op>summary{cursor:pointer;padding:10px 14px;display:flex;gap:12px;align-items:center}
        .m{font:600 12px monospace;padding:3px 8px;border-radius:4px;color:#fff;min-width:48px;text-align:center}
        .GET{background:#2f7d32}.POST{background:#1f5fa8}.PUT{background:#a86b1f}.DELETE{background:#a8321f}
        .p{font-family:monospace;font-weight:600}.s{color:var(--dim)}
        .body{padding:4px 16px 14px;border-top:1px solid var(--soft)}
        pre{background:#0f1720;color:#dde3ea;padding:10px;border-radius:5px;overflow:auto;font-size:12.5px;max-height:420px;margin:4px 0}
        table{border-collapse:collapse;margin:6px 0;width:100%}td,th{border:1px solid var(--line);padding:4px 8px;text-align:left;font-size:13.5px;vertical-align:top}
        td p,.d p{margin:2px 0}code{background:var(--soft);padding:1px 4px;border-radius:3px;font-size:90%}
        details.schema{margin:4px 0}details.schema>summary{cursor:pointer;color:#1f5fa8;font-size:13.5px}
        .try{background:#f3f6fa;border:1px solid var(--line);border-radius:6px;padding:10px 12px;margin-top:12px}
        .try label{display:block;font-size:13px;color:var(--dim);margin:6px 0 2px}
        .try input[type=text]{width:100%;font:13px monospace;padding:4px 6px}
        textarea{width:100%;min-height:130px;font:12.5px/1.4 monospace;padding:6px;border:1px solid var(--line);border-radius:4px}
        button{font:600 13px system-ui,sans-serif;padding:6px 16px;border:0;border-radius:4px;background:#1f5fa8;color:#fff;cursor:pointer;margin-top:8px}
        button:disabled{opacity:.6;cursor:wait}
        select{font-size:13px;padding:3px}
        .status{font:600 14px monospace;margin-top:10px}.ok{color:#2f7d32}.bad{color:#a8321f}
        .hint{font-size:12.5px;color:var(--dim)}
        </style>
        </head>
        <body>
        <header><h1 id="title">\(title)</h1><div class="d" id="subtitle"></div><div id="auth" hidden><label for="api-key">API key</label><input id="api-key" type="password" autocomplete="off" placeholder="sent as Authorization: Bearer …"></div></header>
        <main id="content"><noscript>This page needs JavaScript to render; the raw document is at <a href="openapi.json">openapi.json</a>.</noscript></main>
        <script type="application/json" id="settings">\(settings)</script>
        <script type="application/json" id="openapi">
        """
    }

    private static let tail = """
        </script>
        <script>
        (function () {
          'use strict';
          var doc = JSON.parse(document.getElementById('openapi').textContent);
          var settings = JSON.parse(document.getElementById('settings').textContent);
          var root = document.getElementById('content');
          var schemas = (doc.components && doc.components.schemas) || {};
          // Requests go to the server this page came from, under the same prefix (a proxy may mount the gateway under a path).
          var base = location.pathname.replace(/\\/docs\\/?$/, '');

          function el(tag, cls, text) {
            var e = document.createElement(tag);
            if (cls) e.className = cls;
            if (text != null) e.textContent = text;
            return e;
          }
          // A small Markdown subset (paragraphs, `code`, **bold**, [links](…)) over escaped text.
          function markdown(text) {
            var box = el('div');
            String(text || '').split(/\\n\\s*\\n/).forEach(function (para) { box.appendChild(inline(para, 'p')); });
            return box;
          }
          function inline(para, tag) {
              var p = el(tag), rest = para;
              var pattern = /`([^`]+)`|\\*\\*([^*]+)\\*\\*|\\[([^\\]]+)\\]\\(([^)\\s]+)\\)/;
              var match;
              while ((match = pattern.exec(rest)) !== null) {
                p.appendChild(document.createTextNode(rest.slice(0, match.index)));
                if (match[1] != null) p.appendChild(el('code', null, match[1]));
                else if (match[2] != null) p.appendChild(el('b', null, match[2]));
                else {
                  var a = el('a', null, match[3]);
                  if (/^(https?:|\\/|#)/.test(match[4])) a.href = match[4];
                  p.appendChild(a);
                }
                rest = rest.slice(match.index + match[0].length);
              }
              p.appendChild(document.createTextNode(rest));
              return p;
          }
          // JSON for reading: arrays of plain values (matrix rows) on one line, everything else indented.
          function pretty(value, indent) {
            indent = indent || '';
            if (Array.isArray(value)) {
              if (!value.length) return '[]';
              if (value.every(function (v) { return v === null || typeof v !== 'object'; })) {
                return '[' + value.map(function (v) { return JSON.stringify(v); }).join(', ') + ']';
              }
              var inner = indent + '  ';
              return '[\\n' + value.map(function (v) { return inner + pretty(v, inner); }).join(',\\n') + '\\n' + indent + ']';
            }
            if (value && typeof value === 'object') {
              var keys = Object.keys(value);
              if (!keys.length) return '{}';
              var inner2 = indent + '  ';
              return '{\\n' + keys.map(function (k) { return inner2 + JSON.stringify(k) + ': ' + pretty(value[k], inner2); }).join(',\\n') + '\\n' + indent + '}';
            }
            return JSON.stringify(value);
          }
          function resolve(schema) {
            var seen = 0;
            while (schema && typeof schema === 'object' && typeof schema.$ref === 'string' && seen++ < 16) {
              var ref = schema.$ref;
              if (ref.indexOf('#/components/schemas/') !== 0) break;
              var target = schemas[decodeURIComponent(ref.slice(21)).replace(/~1/g, '/').replace(/~0/g, '~')];
              if (!target) break;
              schema = target;
            }
            return schema;
          }
          // The schema with references replaced by their targets (to a depth), for reading.
          function expand(schema, depth) {
            if (schema === null || typeof schema !== 'object') return schema;
            if (depth > 7) return schema.$ref ? { $ref: schema.$ref } : '…';
            var s = resolve(schema), out = Array.isArray(s) ? [] : {};
            Object.keys(s).forEach(function (k) { out[k] = expand(s[k], depth + 1); });
            return out;
          }
          function schemaBlock(label, schema) {
            var d = el('details', 'schema');
            d.appendChild(el('summary', null, label));
            d.appendChild(el('pre', null, pretty(expand(schema, 0))));
            return d;
          }
          // An example value: the schema's own examples first, else one built from its shape.
          function sample(schema, depth, counter) {
            schema = resolve(schema);
            if (!schema || typeof schema !== 'object' || depth > 8) return null;
            if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
            if ('example' in schema) return schema.example;
            if ('const' in schema) return schema.const;
            if ('default' in schema) return schema.default;
            if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
            var choices = schema.oneOf || schema.anyOf;
            if (choices && choices.length) {
              var pick = choices.filter(function (c) { return resolve(c).type !== 'null'; })[0] || choices[0];
              return sample(pick, depth + 1, counter);
            }
            if (schema.allOf) {
              var merged = {};
              schema.allOf.forEach(function (part) {
                var v = sample(part, depth + 1, counter);
                if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(merged, v);
              });
              if (Object.keys(merged).length) return merged;
            }
            var type = Array.isArray(schema.type) ? schema.type.filter(function (t) { return t !== 'null'; })[0] : schema.type;
            if (!type && schema.properties) type = 'object';
            if (!type && schema.items) type = 'array';
            switch (type) {
              case 'object':
                var obj = {}, props = schema.properties || {};
                var keys = schema.required && schema.required.length ? schema.required : Object.keys(props);
                keys.forEach(function (k) { if (props[k]) obj[k] = sample(props[k], depth + 1, counter); });
                return obj;
              case 'array':
                var n = Math.max(schema.minItems || 2, 2), arr = [];
                for (var i = 0; i < n && i < 4; i++) arr.push(sample(schema.items || {}, depth + 1, counter));
                return arr;
              case 'integer': return schema.minimum != null ? schema.minimum : 1;
              case 'number': counter.n += 1; return counter.n;
              case 'boolean': return true;
              case 'string': return 'string';
              case 'null': return null;
            }
            return null;
          }
          // Named examples of a request body: the media type's, each variant of a union (one per operation), the schema's.
          function examplesFor(media) {
            var out = [];
            if (!media) return out;
            if (media.examples) Object.keys(media.examples).forEach(function (k) {
              var ex = media.examples[k];
              if (ex && 'value' in ex) out.push({ name: ex.summary || k, value: ex.value });
            });
            if ('example' in media) out.push({ name: 'example', value: media.example });
            var schema = resolve(media.schema);
            if (schema && (schema.oneOf || schema.anyOf) && !out.length) {
              (schema.oneOf || schema.anyOf).forEach(function (variant, i) {
                var v = resolve(variant);
                var op = v && v.properties && v.properties.operation && (resolve(v.properties.operation) || {}).const;
                var name = op || v.title || ('variant ' + (i + 1));
                var value = v && Array.isArray(v.examples) && v.examples.length ? v.examples[0] : sample(v, 0, { n: 0 });
                out.push({ name: name, value: value });
              });
            }
            if (schema && Array.isArray(schema.examples)) schema.examples.forEach(function (v, i) {
              out.push({ name: (v && v.operation) || ('example ' + (i + 1)), value: v });
            });
            if (!out.length && schema) out.push({ name: 'example', value: sample(schema, 0, { n: 0 }) });
            return out;
          }

          var keyBox = document.getElementById('auth'), keyInput = document.getElementById('api-key');
          if (settings.apiKeysRequired) {
            keyBox.hidden = false;
            try { keyInput.value = sessionStorage.getItem('forzium-api-key') || ''; } catch (e) {}
            keyInput.addEventListener('change', function () { try { sessionStorage.setItem('forzium-api-key', keyInput.value); } catch (e) {} });
          }

          // The editor as tall as its example (up to a limit).
          function fit(area) {
            var lines = area.value.split('\\n').length;
            area.style.height = Math.min(460, Math.max(130, 18 * (lines + 1))) + 'px';
          }
          function tryPanel(path, method, op) {
            var panel = el('div', 'try');
            panel.appendChild(el('h4', null, 'Try it'));
            var params = (op.parameters || []).filter(function (p) { return p.in === 'path' || p.in === 'header' || p.in === 'query'; });
            var inputs = [];
            params.forEach(function (p) {
              var label = el('label', null, p.name + ' (' + p.in + (p.required ? ', required' : '') + ')');
              var input = el('input'); input.type = 'text'; input.name = p.name; input.dataset.in = p.in;
              var s = resolve(p.schema) || {};
              if (p.in === 'path') input.value = (p.example != null ? p.example : (s.enum && s.enum[0]) || (s.examples && s.examples[0]) || '');
              input.placeholder = s.type ? s.type + (s.minimum != null ? ' ≥ ' + s.minimum : '') : '';
              panel.appendChild(label); panel.appendChild(input); inputs.push(input);
            });
            var media = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
            var area = null;
            if (media) {
              var examples = examplesFor(media);
              var label = el('label', null, 'Body (application/json)');
              panel.appendChild(label);
              if (examples.length > 1) {
                var select = el('select', 'example');
                examples.forEach(function (ex, i) { var o = el('option', null, ex.name); o.value = String(i); select.appendChild(o); });
                select.addEventListener('change', function () { area.value = pretty(examples[+select.value].value); fit(area); });
                panel.appendChild(select);
              }
              area = el('textarea', 'req-body');
              area.spellcheck = false;
              area.value = examples.length ? pretty(examples[0].value) : '{}';
              fit(area);
              panel.appendChild(area);
            }
            var send = el('button', 'send', 'Send');
            panel.appendChild(send);
            var status = el('div', 'status resp-status');
            var headers = el('pre', 'resp-headers'); headers.hidden = true;
            var body = el('pre', 'resp-body'); body.hidden = true;
            panel.appendChild(status); panel.appendChild(headers); panel.appendChild(body);

            send.addEventListener('click', function () {
              var url = path, query = [], sendHeaders = {};
              inputs.forEach(function (input) {
                var v = input.value;
                if (input.dataset.in === 'path') url = url.replace('{' + input.name + '}', encodeURIComponent(v));
                else if (v !== '' && input.dataset.in === 'header') sendHeaders[input.name] = v;
                else if (v !== '' && input.dataset.in === 'query') query.push(encodeURIComponent(input.name) + '=' + encodeURIComponent(v));
              });
              if (query.length) url += '?' + query.join('&');
              if (settings.apiKeysRequired && keyInput.value) sendHeaders['Authorization'] = 'Bearer ' + keyInput.value;
              var init = { method: method, headers: sendHeaders };
              if (area) { sendHeaders['Content-Type'] = 'application/json'; init.body = area.value; }
              send.disabled = true;
              status.className = 'status resp-status'; status.textContent = 'sending…';
              headers.hidden = true; body.hidden = true; body.textContent = '';
              var started = performance.now();
              fetch(base + url, init).then(function (response) {
                var lines = ['HTTP ' + response.status + ' ' + response.statusText];
                response.headers.forEach(function (v, k) { lines.push(k + ': ' + v); });
                headers.textContent = lines.join('\\n'); headers.hidden = false;
                status.textContent = response.status + ' ' + (response.statusText || '');
                status.className = 'status resp-status ' + (response.ok ? 'ok' : 'bad');
                status.dataset.code = String(response.status);
                var type = response.headers.get('content-type') || '';
                body.hidden = false;
                if (type.indexOf('ndjson') >= 0 && response.body && response.body.getReader) {
                  // NDJSON: shown line by line as the gateway streams it.
                  var reader = response.body.getReader(), decoder = new TextDecoder();
                  var pump = function () {
                    return reader.read().then(function (part) {
                      if (part.done) { body.textContent += decoder.decode(); return; }
                      body.textContent += decoder.decode(part.value, { stream: true });
                      body.scrollTop = body.scrollHeight;
                      return pump();
                    });
                  };
                  return pump();
                }
                return response.text().then(function (text) {
                  if (type.indexOf('json') >= 0) {
                    try { text = pretty(JSON.parse(text)); } catch (e) {}
                  }
                  body.textContent = text;
                });
              }).catch(function (error) {
                status.className = 'status resp-status bad';
                status.textContent = 'request failed: ' + error;
              }).then(function () {
                send.disabled = false;
                status.dataset.done = '1';
                status.title = Math.round(performance.now() - started) + ' ms';
              });
            });
            return panel;
          }

          function operation(path, method, op) {
            var d = el('details', 'op');
            d.id = 'op-' + method + '-' + path.replace(/[^A-Za-z0-9]+/g, '-');
            d.dataset.method = method; d.dataset.path = path;
            var s = el('summary');
            s.appendChild(el('span', 'm ' + method, method));
            s.appendChild(el('span', 'p', path));
            s.appendChild(inline(op.summary || '', 'span')); s.lastChild.className = 's';
            d.appendChild(s);
            var body = el('div', 'body');
            if (op.description) body.appendChild(markdown(op.description));
            var params = op.parameters || [];
            // With keys configured, every route needs one except those whose own security is empty (public ones).
            var security = op.security !== undefined ? op.security : (doc.security || []);
            var needsKey = settings.apiKeysRequired && security.length > 0;
            if (params.length || needsKey) {
              body.appendChild(el('h4', null, 'Parameters'));
              var t = el('table'), h = el('tr');
              ['Name', 'In', 'Type', 'Description'].forEach(function (c) { h.appendChild(el('th', null, c)); });
              t.appendChild(h);
              params.forEach(function (p) {
                var tr = el('tr'), ps = resolve(p.schema) || {};
                tr.appendChild(el('td', null, p.name + (p.required ? ' *' : '')));
                tr.appendChild(el('td', null, p.in));
                tr.appendChild(el('td', null, [].concat(ps.type || (ps.enum ? 'enum' : '')).join(' | ') + (ps.enum ? ' (' + ps.enum.join(', ') + ')' : '')));
                var td = el('td'); td.appendChild(markdown(p.description || '')); tr.appendChild(td);
                t.appendChild(tr);
              });
              if (needsKey) {
                var tr = el('tr');
                tr.appendChild(el('td', null, 'Authorization / X-API-Key *')); tr.appendChild(el('td', null, 'header'));
                tr.appendChild(el('td', null, 'string')); tr.appendChild(el('td', null, 'API key (Bearer token or X-API-Key); the field at the top of the page fills it.'));
                t.appendChild(tr);
              }
              body.appendChild(t);
            }
            var rb = op.requestBody;
            if (rb && rb.content) {
              body.appendChild(el('h4', null, 'Request body'));
              Object.keys(rb.content).forEach(function (type) { body.appendChild(schemaBlock(type + ' schema', rb.content[type].schema)); });
            }
            body.appendChild(el('h4', null, 'Responses'));
            var table = el('table'), header = el('tr');
            ['Status', 'Meaning', 'Content'].forEach(function (c) { header.appendChild(el('th', null, c)); });
            table.appendChild(header);
            Object.keys(op.responses || {}).forEach(function (code) {
              var r = op.responses[code], tr = el('tr');
              tr.appendChild(el('td', null, code));
              var meaning = el('td'); meaning.appendChild(markdown(r.description || ''));
              Object.keys(r.headers || {}).forEach(function (name) {
                var hdr = el('div', 'hint'); hdr.appendChild(el('code', null, name)); hdr.appendChild(document.createTextNode(' ' + (r.headers[name].description || '')));
                meaning.appendChild(hdr);
              });
              tr.appendChild(meaning);
              var content = el('td');
              Object.keys(r.content || {}).forEach(function (type) {
                if (r.content[type].schema) content.appendChild(schemaBlock(type, r.content[type].schema));
                else content.appendChild(el('div', null, type));
              });
              tr.appendChild(content);
              table.appendChild(tr);
            });
            body.appendChild(table);
            body.appendChild(tryPanel(path, method, op));
            d.appendChild(body);
            return d;
          }

          document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
          document.getElementById('subtitle').appendChild(markdown(doc.info.description || ''));
          var groups = {}, order = [];
          Object.keys(doc.paths).forEach(function (path) {
            Object.keys(doc.paths[path]).forEach(function (method) {
              if (['get', 'post', 'put', 'delete', 'patch'].indexOf(method) < 0) return;
              var op = doc.paths[path][method], tag = (op.tags && op.tags[0]) || 'default';
              if (!groups[tag]) { groups[tag] = []; order.push(tag); }
              groups[tag].push(operation(path, method.toUpperCase(), op));
            });
          });
          order.forEach(function (tag) {
            root.appendChild(el('h2', null, tag));
            groups[tag].forEach(function (d) { root.appendChild(d); });
          });
          if (location.hash) { var target = document.getElementById(location.hash.slice(1)); if (target) target.open = true; }
          document.body.dataset.ready = '1';
        })();
        </script>
        </body>
        </html>

        """
}
