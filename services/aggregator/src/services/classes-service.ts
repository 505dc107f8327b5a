// Use cases of a federation's class names and colours: read them, or replace the whole set in one
// transaction (checked against the federation's K first, so a bad set leaves the stored one as it was).

import { validateClassLabels, type ClassLabel } from '@fuss/core';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { FederationsService } from './federations-service.js';

export function createClassesService(deps: { prisma: PrismaClient; federations: Pick<FederationsService, 'get'> }) {
  const { prisma, federations } = deps;

  async function list(federationId: string): Promise<ClassLabel[]> {
    const rows = await prisma.federationClass.findMany({ where: { federationId }, orderBy: { classId: 'asc' } });
    return rows.map((row) => (row.colour === null ? { id: row.classId, name: row.name } : { id: row.classId, name: row.name, colour: row.colour }));
  }

  return {
    /** The federation's named classes, by id. */
    async get(federationId: string): Promise<ClassLabel[]> {
      await federations.get(federationId);
      return list(federationId);
    },

    /** Replaces the federation's named classes with `classes` (ids in 0..K-1, each once). */
    async set(federationId: string, classes: readonly ClassLabel[]): Promise<ClassLabel[]> {
      const federation = await federations.get(federationId);
      const checked = validateClassLabels(classes, federation.k);
      await prisma.$transaction([
        prisma.federationClass.deleteMany({ where: { federationId } }),
        prisma.federationClass.createMany({ data: checked.map((c) => ({ federationId, classId: c.id, name: c.name, colour: c.colour ?? null })) }),
      ]);
      return list(federationId);
    },
  };
}

export type ClassesService = ReturnType<typeof createClassesService>;
