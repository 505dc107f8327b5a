import type { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
import { FussError } from '@fuss/core';
import type { SegmentService } from '../services/segment-service.js';
import type { Auth } from '../plugins/auth.js';

const SegmentQuery = Type.Object({
  federation: Type.String({ format: 'uuid', description: 'Federation whose global model segments the image' }),
  version: Type.Optional(Type.Union([Type.Literal('latest'), Type.String({ pattern: '^[0-9]{1,9}$' })], { default: 'latest' })),
  format: Type.Optional(Type.Union([Type.Literal('png'), Type.Literal('json'), Type.Literal('overlay')], { default: 'png', description: 'png: 8-bit class ids; json: ids as an array; overlay: colours over the image' })),
});

export async function segmentRoutes(app: FastifyInstance, opts: { segment: SegmentService; auth: Auth }) {
  for (const type of ['image/jpeg', 'image/png']) app.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  await app.register(multipart, { limits: { files: 1, fileSize: app.initialConfig.bodyLimit } });
  app.post<{ Querystring: Static<typeof SegmentQuery>; Body: Buffer }>('/segment', {
    schema: {
      operationId: 'segmentImage',
      summary: "Segment an image (image/jpeg or image/png body) with a federation's global model: a mask of the image's size",
      tags: ['segmentation'],
      security: [{ bearer: [] }],
      querystring: SegmentQuery,
      consumes: ['image/jpeg', 'image/png', 'multipart/form-data'],
      response: {
        200: {
          description: 'The mask: PNG of class ids (format=png), a colour overlay PNG (format=overlay), or JSON (format=json)',
          content: {
            'image/png': { schema: { type: 'string', format: 'binary' } },
            'application/json': { schema: Type.Object({ width: Type.Integer(), height: Type.Integer(), k: Type.Integer(), modelVersion: Type.Integer(), mask: Type.Array(Type.Integer()) }) },
          },
        },
      },
    },
    preHandler: (request) => opts.auth.requireMember(request, request.query.federation).then(() => undefined),
    handler: async (request, reply) => {
      let image: Buffer | undefined = Buffer.isBuffer(request.body) ? request.body : undefined;
      if (request.isMultipart()) {
        const file = await request.file();
        image = file ? await file.toBuffer() : undefined;
      }
      if (!image || image.length === 0) throw new FussError('send the image as an image/jpeg or image/png body, or as the file of a multipart/form-data body', { status: 415, type: 'unsupported-media-type' });
      const version = !request.query.version || request.query.version === 'latest' ? 'latest' : Number(request.query.version);
      const result = await opts.segment.segment(request.query.federation, version, image, request.query.format ?? 'png');
      reply.headers(result.headers).type(result.contentType);
      return result.body;
    },
  });
}
