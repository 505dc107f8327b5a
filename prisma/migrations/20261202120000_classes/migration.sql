-- Names and colours of a federation's classes (class ids are kept stable across global versions).
CREATE TABLE "FederationClass" (
    "federationId" TEXT NOT NULL,
    "classId" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "colour" TEXT,

    CONSTRAINT "FederationClass_pkey" PRIMARY KEY ("federationId","classId")
);

ALTER TABLE "FederationClass" ADD CONSTRAINT "FederationClass_federationId_fkey" FOREIGN KEY ("federationId") REFERENCES "Federation"("id") ON DELETE CASCADE ON UPDATE CASCADE;
