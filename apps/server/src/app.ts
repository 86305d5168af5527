import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import helmet from '@fastify/helmet';
import { Module } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Config } from './config.js';
import { consoleCsp, serveConsole } from './console.js';
import { controllers } from './controllers/index.js';
import { AuthGuard } from './middleware/auth.guard.js';
import { authenticateFirst } from './middleware/authenticate-first.js';
import { ServerLogger } from './logger.js';
import { ProblemFilter } from './middleware/problem.filter.js';
import { streamUploads } from './middleware/upload-body.js';
import { connectDatabase } from './repositories/database.js';
import { repositories } from './repositories/index.js';
import { CONFIG, DATABASE, OBJECT_STORE, UPLOAD_SPOOL, WORKERS } from './repositories/tokens.js';
import { AuthService } from './services/auth.service.js';
import { services } from './services/index.js';
import type { ObjectStore } from './store/object-store.js';
import { UploadSpool } from './store/upload-spool.js';
import { WorkerPool } from './workers/worker-pool.js';

export const API_PREFIX = 'api/v1';

/** How long a shutdown waits for requests under way before it closes every connection. */
const SHUTDOWN_GRACE_MS = 3000;

export interface Server {
  app: NestFastifyApplication;
  close(): Promise<void>;
}

/** Builds the API server (not yet listening) on the given database and object store. */
export async function createServer(config: Config, databaseUrl: string, store: ObjectStore): Promise<Server> {
  const db = connectDatabase(databaseUrl);
  const spool = await UploadSpool.create(config.uploadDir);
  const workers = new WorkerPool(config.workerThreads);

  @Module({
    controllers,
    providers: [
      { provide: CONFIG, useValue: config },
      { provide: DATABASE, useValue: db },
      { provide: OBJECT_STORE, useValue: store },
      { provide: UPLOAD_SPOOL, useValue: spool },
      { provide: WORKERS, useValue: workers },
      { provide: APP_GUARD, useClass: AuthGuard },
      ...repositories,
      ...services,
    ],
  })
  class AppModule {}

  const adapter = new FastifyAdapter({
    bodyLimit: config.maxJsonBytes,
    trustProxy: config.trustProxy,
    ...(config.tls
      ? { https: { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) } }
      : {}),
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, {
    logger: new ServerLogger(config.logLevel),
  });
  const fastify = app.getHttpAdapter().getInstance();
  const problems = new ProblemFilter();
  authenticateFirst(fastify, API_PREFIX, app.get(AuthService), problems);
  streamUploads(fastify);
  // Over plain HTTP (no TLS here, and no proxy in front adding it), upgrade-insecure-requests would
  // send a browser to https:// for the pages' own scripts, and the console would not load.
  const https = config.tls !== undefined;
  await app.register(helmet, {
    // The API's answers and the docs UI at /api/docs, which needs inline styles and scripts;
    // the console's pages get their own, stricter policy (console.ts).
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", "'unsafe-inline'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        upgradeInsecureRequests: https ? [] : null,
      },
    },
    hsts: https,
  });
  await serveConsole(fastify, config.consoleDir, consoleCsp(https));
  app.setGlobalPrefix(API_PREFIX);
  app.useGlobalFilters(problems);

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('uPC server')
      .setDescription('Workspaces, versions, objects and leases for uPC agents and the console.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('api/docs', app, document, { jsonDocumentUrl: 'api/docs-json' });

  await app.init();
  return {
    app,
    close: async () => {
      // Requests under way get a grace period; then any connection still open goes too. A Node
      // client that aborted a fetch leaves a connection idle in a way the server's own idle close
      // does not see, and would hold the shutdown for over a minute.
      const force = setTimeout(() => {
        (app.getHttpServer() as { closeAllConnections?: () => void }).closeAllConnections?.();
      }, SHUTDOWN_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearTimeout(force);
      }
      await Promise.all([db.$disconnect(), workers.close(), spool.close()]);
    },
  };
}
