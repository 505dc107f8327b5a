import type { FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { Type, type Static } from '@sinclair/typebox';
import { FussError } from '@fuss/core';
import type { SegmentService } from '../services/segment-service.js';
import { PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.js';
import { problemResponses } from '../schemas/common.js';

const SegmentQuery = Type.Object({
  federation: Type.String({ format: 'uuid', description: 'Federation whose global model segments the image' }),
  version: Type.Optional(Type.Union([Type.Literal('latest'), Type.String({ pattern: '^[0-9]{1,9}$' })], { default: 'latest' })),
  format: Type.Optional(Type.Union([Type.Literal('png'), Type.Literal('json'), Type.Literal('overlay')], { default: 'png', description: 'png: 8-bit class ids (16-bit when k > 256); json: ids as an array with the class table (names, colours, pixel shares); overlay: class colours over the image' })),
  refine: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('crf')], { default: 'none', description: 'crf: refine the mask with a dense CRF on the image (edges follow the image)' })),
  legend: Type.Optional(Type.Boolean({ default: false, description: 'overlay: add a legend of the classes present, by share' })),
});

export async function segmentRoutes(app: FastifyInstance, opts: { segment: SegmentService; imageBytes: number }) {
  const { imageBytes } = opts;
  for (const type of ['image/jpeg', 'image/png']) app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: imageBytes }, (_request, body, done) => done(null, body));
  await app.register(multipart, { limits: { files: 1, fileSize: imageBytes, fields: 4, fieldSize: 1024, parts: 5, headerPairs: 50 } });
  app.post<{ Querystring: Static<typeof SegmentQuery>; Body: Buffer }>('/segment', {
    config: { access: 'member' },
    bodyLimit: imageBytes + 64 * 1024,
    schema: {
      operationId: 'segmentImage',
      summary: "Segment an image (a JPEG or PNG body, or the file of a multipart/form-data body) with a federation's global model: a mask of the image's size",
      description: 'Large images are resized for the backbone (FUSS_SEGMENT_MAX_SIDE) and the mask is brought back to the image size. 413 beyond FUSS_IMAGE_LIMIT bytes or FUSS_IMAGE_MAX_PIXELS pixels; 415 for anything that is not JPEG or PNG; 503 with Retry-After when every worker is busy.',
      tags: ['segmentation'],
      security: [{ bearer: [] }],
      querystring: SegmentQuery,
      consumes: ['image/jpeg', 'image/png', 'multipart/form-data'],
      response: {
        200: {
          description: 'The mask: PNG of class ids (format=png), a colour overlay PNG (format=overlay), or JSON (format=json)',
          content: {
            'image/png': { schema: { type: 'string', format: 'binary' } },
            'application/json': {
              schema: Type.Object({
                width: Type.Integer(), height: Type.Integer(), k: Type.Integer(), modelVersion: Type.Integer(), mask: Type.Array(Type.Integer()),
                classes: Type.Array(Type.Object({ id: Type.Integer(), name: Type.String(), colour: Type.String(), pixels: Type.Integer(), share: Type.Number() })),
              }),
            },
          },
        },
        ...problemResponses(415, 422, 503),
      },
    },
    handler: async (request, reply) => {
      let image: Buffer | undefined = Buffer.isBuffer(request.body) ? request.body : undefined;
      if (request.isMultipart()) {
        try {
          const file = await request.file();
          image = file ? await file.toBuffer() : undefined;
        } catch (err) {
          if (err instanceof FussError) throw err;
          const code = (err as { code?: string }).code;
          if (code === 'FST_REQ_FILE_TOO_LARGE') throw new PayloadTooLargeError(`the image is larger than ${imageBytes} bytes (FUSS_IMAGE_LIMIT)`);
          throw new FussError(`malformed multipart/form-data body: ${(err as Error).message}`, { status: 400, type: 'bad-multipart' });
        }
      }
      if (!image || image.length === 0) throw new UnsupportedMediaTypeError('send the image as an image/jpeg or image/png body, or as the file of a multipart/form-data body');
      const version = !request.query.version || request.query.version === 'latest' ? 'latest' : Number(request.query.version);
      const result = await opts.segment.segment(request.query.federation, version, image, { format: request.query.format ?? 'png', refine: request.query.refine ?? 'none', legend: request.query.legend ?? false });
      reply.headers(result.headers).type(result.contentType);
      return result.body;
    },
  });
}
