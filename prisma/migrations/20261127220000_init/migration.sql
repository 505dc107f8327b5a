-- CreateTable
CREATE TABLE "Federation" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "backboneId" TEXT NOT NULL,
    "backboneSha256" TEXT NOT NULL,
    "featureKey" TEXT NOT NULL,
    "channels" INTEGER NOT NULL,
    "codeDim" INTEGER NOT NULL,
    "k" INTEGER NOT NULL,
    "strategy" TEXT NOT NULL,
    "weighted" BOOLEAN NOT NULL DEFAULT true,
    "aggregateHead" BOOLEAN NOT NULL DEFAULT true,
    "aggregateCentroids" BOOLEAN NOT NULL DEFAULT true,
    "regularizer" TEXT NOT NULL DEFAULT 'none',
    "regularizerScope" TEXT NOT NULL DEFAULT 'nonlinear',
    "totalRounds" INTEGER NOT NULL,
    "localSteps" INTEGER NOT NULL,
    "minParticipants" INTEGER NOT NULL,
    "maxParticipants" INTEGER NOT NULL,
    "roundDeadlineSeconds" INTEGER NOT NULL,
    "deadlinePolicy" TEXT NOT NULL DEFAULT 'extend',
    "seed" INTEGER NOT NULL DEFAULT 0,
    "status" TEXT NOT NULL DEFAULT 'active',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Federation_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Participant" (
    "id" TEXT NOT NULL,
    "federationId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "Participant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Round" (
    "id" TEXT NOT NULL,
    "federationId" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'open',
    "baseVersion" INTEGER NOT NULL,
    "openedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deadlineAt" TIMESTAMP(3) NOT NULL,
    "aggregationStartedAt" TIMESTAMP(3),
    "closedAt" TIMESTAMP(3),
    "failureReason" TEXT,
    "metrics" JSONB,

    CONSTRAINT "Round_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Update" (
    "id" TEXT NOT NULL,
    "roundId" TEXT NOT NULL,
    "participantId" TEXT NOT NULL,
    "samples" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "weights" BYTEA NOT NULL,
    "metrics" JSONB,
    "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Update_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "GlobalModel" (
    "id" TEXT NOT NULL,
    "federationId" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "roundNumber" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "weights" BYTEA NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "GlobalModel_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Participant_tokenHash_key" ON "Participant"("tokenHash");

-- CreateIndex
CREATE UNIQUE INDEX "Participant_federationId_name_key" ON "Participant"("federationId", "name");

-- CreateIndex
CREATE UNIQUE INDEX "Round_federationId_number_key" ON "Round"("federationId", "number");

-- CreateIndex
CREATE UNIQUE INDEX "Update_roundId_participantId_key" ON "Update"("roundId", "participantId");

-- CreateIndex
CREATE UNIQUE INDEX "GlobalModel_federationId_version_key" ON "GlobalModel"("federationId", "version");

-- AddForeignKey
ALTER TABLE "Participant" ADD CONSTRAINT "Participant_federationId_fkey" FOREIGN KEY ("federationId") REFERENCES "Federation"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Round" ADD CONSTRAINT "Round_federationId_fkey" FOREIGN KEY ("federationId") REFERENCES "Federation"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Update" ADD CONSTRAINT "Update_roundId_fkey" FOREIGN KEY ("roundId") REFERENCES "Round"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Update" ADD CONSTRAINT "Update_participantId_fkey" FOREIGN KEY ("participantId") REFERENCES "Participant"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "GlobalModel" ADD CONSTRAINT "GlobalModel_federationId_fkey" FOREIGN KEY ("federationId") REFERENCES "Federation"("id") ON DELETE CASCADE ON UPDATE CASCADE;
