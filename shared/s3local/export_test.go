package s3local

// MetaName is metaName: where s3afero keeps an object's metadata, under metadata/<bucket>/.
var MetaName = metaName

// PendingDir is pendingDir: where the markers of the PUTs in progress are.
var PendingDir = pendingDir
