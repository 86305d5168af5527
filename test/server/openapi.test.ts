import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

describe('OpenAPI', () => {
  it('documents every endpoint at /api/docs-json, with the bodies it validates', async () => {
    const res = await fetch(`${server.url}/api/docs-json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>
      >;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual(
      [
        'GET /api/v1/health',
        'POST /api/v1/auth/login',
        'POST /api/v1/auth/pc-login',
        'POST /api/v1/auth/logout',
        'GET /api/v1/auth/me',
        'POST /api/v1/users',
        'GET /api/v1/users',
        'PATCH /api/v1/users/{id}',
        'POST /api/v1/users/{id}/password',
        'DELETE /api/v1/users/{id}',
        'POST /api/v1/devices',
        'GET /api/v1/devices',
        'POST /api/v1/devices/{id}/heartbeat',
        'POST /api/v1/devices/{id}/cache-key',
        'DELETE /api/v1/devices/{id}/cache-key',
        'POST /api/v1/workspaces',
        'GET /api/v1/workspaces',
        'GET /api/v1/workspaces/{id}',
        'PUT /api/v1/workspaces/{id}/policy',
        'PUT /api/v1/workspaces/{id}/quota',
        'DELETE /api/v1/workspaces/{id}',
        'POST /api/v1/workspaces/{workspaceId}/objects/missing',
        'POST /api/v1/workspaces/{workspaceId}/objects/fetch',
        'PUT /api/v1/workspaces/{workspaceId}/objects/{hash}',
        'GET /api/v1/workspaces/{workspaceId}/objects/{hash}',
        'PUT /api/v1/workspaces/{workspaceId}/packs/{hash}',
        'GET /api/v1/workspaces/{workspaceId}/versions',
        'GET /api/v1/workspaces/{workspaceId}/versions/{versionId}',
        'POST /api/v1/workspaces/{workspaceId}/versions',
        'GET /api/v1/workspaces/{workspaceId}/versions/{versionId}/tree',
        'GET /api/v1/workspaces/{workspaceId}/versions/{versionId}/file',
        'GET /api/v1/workspaces/{workspaceId}/versions/{versionId}/diff',
        'POST /api/v1/workspaces/{workspaceId}/restore',
        'GET /api/v1/workspaces/{workspaceId}/lease',
        'POST /api/v1/workspaces/{workspaceId}/lease',
        'POST /api/v1/workspaces/{workspaceId}/lease/renew',
        'POST /api/v1/workspaces/{workspaceId}/lease/release',
        'POST /api/v1/workspaces/{workspaceId}/lease/takeover',
        'DELETE /api/v1/workspaces/{workspaceId}/lease',
        'GET /api/v1/audit',
        'GET /api/v1/stats',
        'GET /api/v1/events',
      ].sort(),
    );
    const commit = doc.paths['/api/v1/workspaces/{workspaceId}/versions']?.post?.requestBody;
    expect(JSON.stringify(commit?.content['application/json']?.schema)).toContain('fencingToken');
    const heartbeat = doc.paths['/api/v1/devices/{id}/heartbeat']?.post?.requestBody;
    expect(heartbeat).toMatchObject({ required: false });
    expect(JSON.stringify(heartbeat?.content['application/json']?.schema)).toContain('pendingBytes');
    const answers = (path: string) =>
      JSON.stringify(
        (doc.paths[path]?.get as { responses?: Record<string, unknown> } | undefined)?.responses?.['200'],
      );
    expect(answers('/api/v1/stats')).toContain('versionsToday');
    expect(answers('/api/v1/events')).toContain('text/event-stream');
    expect(answers('/api/v1/events')).toContain('lastSync');
    expect(answers('/api/v1/devices')).toContain('ownerName');
    expect(answers('/api/v1/workspaces')).toContain('ownerName');
    expect(answers('/api/v1/workspaces/{id}')).toContain('ownerName');
  });

  it('serves the interactive UI at /api/docs with security headers', async () => {
    const res = await fetch(`${server.url}/api/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('swagger');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });

  it('answers an unknown route with a problem document, not a stack', async () => {
    const res = await fetch(`${server.url}/api/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(((await res.json()) as { code: string }).code).toBe('not_found');
  });
});
