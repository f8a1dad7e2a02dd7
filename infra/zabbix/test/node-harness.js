// Runs infra/zabbix/alert-intake.js the way Zabbix does (the script as the
// body of a function of `value`), with small stand-ins for Zabbix's objects.
// Usage: node node-harness.js SCRIPT PARAMS_JSON_FILE (curl|http)
// `curl` offers only CurlHttpRequest (Zabbix 5.0), `http` only HttpRequest (5.4+).
// Prints the script's result, or "ERROR: <what it threw>" and exits 1.
'use strict';
const fs = require('fs');
const { execFileSync } = require('child_process');

const [script, paramsFile, flavour] = process.argv.slice(2);

// Zabbix's requests are synchronous; a child process makes the real POST.
function post(url, headers, body) {
    const child = `
        const [url, headers] = JSON.parse(process.argv[1]);
        let body = '';
        process.stdin.on('data', (d) => (body += d)).on('end', async () => {
            const h = {};
            for (const line of headers) { const i = line.indexOf(':'); h[line.slice(0, i).trim()] = line.slice(i + 1).trim(); }
            const r = await fetch(url, { method: 'POST', headers: h, body });
            process.stdout.write(JSON.stringify([r.status, await r.text()]));
        });`;
    const out = execFileSync(process.execPath, ['-e', child, JSON.stringify([url, headers])], { input: body });
    return JSON.parse(out.toString());
}

function Request(names) {
    return function () {
        const headers = [];
        let status = 0;
        this[names.add] = (h) => headers.push(h);
        this[names.post] = (url, body) => {
            const [s, text] = post(url, headers, body);
            status = s;
            return text;
        };
        this[names.status] = () => status;
    };
}

const sandbox = {
    Zabbix: { Log: (level, message) => process.stderr.write(`[${level}] ${message}\n`) },
};
if (flavour === 'curl') {
    sandbox.CurlHttpRequest = Request({ add: 'AddHeader', post: 'Post', status: 'Status' });
} else {
    sandbox.HttpRequest = Request({ add: 'addHeader', post: 'post', status: 'getStatus' });
    sandbox.Zabbix.log = sandbox.Zabbix.Log;
}
const run = new Function(...Object.keys(sandbox), 'value', fs.readFileSync(script, 'utf8'));
try {
    process.stdout.write(String(run(...Object.values(sandbox), fs.readFileSync(paramsFile, 'utf8'))) + '\n');
} catch (error) {
    process.stdout.write(`ERROR: ${error}\n`);
    process.exit(1);
}
