"""Which TensorFlow ops a model file may bring: a model is data, so a graph that reads or writes files, runs
Python or talks to the network is refused before TensorFlow runs any of it.

- TF.js graph models: TF.js has a fixed op set without file, Python or network ops, so a ``model.json`` may
  only name ops of that set (:data:`TFJS_OPS`, TensorFlow's names for the ops TF.js's converter maps); a file
  that is harmless in a browser must be harmless here too.
- SavedModels are programs (TensorFlow's own documentation says so): the serving function and every function
  it calls are scanned for :data:`UNSAFE_OPS`, refused unless the model's table says ``trust_model = true``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_sketchbench.errors import SketchBenchError

# TensorFlow op names of the TF.js graph-model op set, by family (as TF.js's converter maps them)
TFJS_OPS = frozenset("""
Add AddN AddV2 BiasAdd Div DivNoNan FloorDiv FloorMod Maximum Minimum Mod Mul Pow RealDiv SquaredDifference Sub
Abs Acos Acosh Asin Asinh Atan Atan2 Atanh Ceil ClipByValue Complex ComplexAbs Cos Cosh Elu Erf Exp Expm1 Floor
Imag IsFinite IsInf IsNan LeakyRelu Log Log1p Neg Prelu Real Reciprocal Relu Relu6 Round Rsqrt Selu Sigmoid Sign
Sin Sinh Softplus Softsign Sqrt Square Tan Tanh
AvgPool AvgPool3D Conv1D Conv2D Conv2DBackpropInput Conv3D Conv3DBackpropInputV2 DepthwiseConv2d
DepthwiseConv2dNative Dilation2D FusedConv2D FusedDepthwiseConv2dNative MaxPool MaxPool3D MaxPoolWithArgmax
_FusedConv2D _FusedDepthwiseConv2dNative
Fill LinSpace Multinomial OneHot Ones OnesLike RandomGamma RandomStandardNormal RandomUniform RandomUniformInt
Range TruncatedNormal Zeros ZerosLike
Const Placeholder PlaceholderWithDefault Identity IdentityN Snapshot StopGradient NoOp Rank Size Shape ShapeN
Print
Enter Exit Merge NextIteration Switch LoopCond If StatelessIf While StatelessWhile PartitionedCall
StatefulPartitionedCall TensorArrayV3 TensorArrayWriteV3 TensorArrayReadV3 TensorArrayGatherV3
TensorArrayScatterV3 TensorArrayConcatV3 TensorArraySplitV3 TensorArraySizeV3 TensorArrayCloseV3 TensorListSetItem
TensorListGetItem TensorListReserve TensorListFromTensor TensorListStack TensorListGather TensorListScatter
TensorListScatterV2 TensorListConcat TensorListConcatV2 TensorListSplit TensorListPushBack TensorListPopBack
TensorListResize TensorListLength EmptyTensorList FakeQuantWithMinMaxVars
NonMaxSuppressionV2 NonMaxSuppressionV3 NonMaxSuppressionV4 NonMaxSuppressionV5 Where ListDiff TopKV2 Unique
UniqueV2 InTopKV2
HashTable HashTableV2 LookupTableImport LookupTableImportV2 LookupTableFind LookupTableFindV2 LookupTableSize
LookupTableSizeV2 InitializeTable InitializeTableV2
ResizeBilinear ResizeNearestNeighbor CropAndResize ImageProjectiveTransformV3
Equal Greater GreaterEqual Less LessEqual LogicalAnd LogicalNot LogicalOr NotEqual Select SelectV2 BitwiseAnd
BatchMatMul BatchMatMulV2 BatchMatMulV3 Einsum MatMul Transpose _FusedMatMul
FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 LRN Softmax LogSoftmax SparseToDense
All Any ArgMax ArgMin Bincount Cumprod Cumsum DenseBincount Max Mean Min Prod Sum
ConcatV2 Concat Gather GatherV2 GatherNd Pack Reverse ReverseV2 ScatterNd Slice StridedSlice Split SplitV Tile
Unpack BroadcastTo BroadcastArgs TensorScatterUpdate
FFT IFFT RFFT IRFFT
SparseFillEmptyRows SparseReshape SparseSegmentMean SparseSegmentSum
StaticRegexReplace StringNGrams StringSplit StringToHashBucketFast
Cast ExpandDims MirrorPad Pad PadV2 Reshape Squeeze SpaceToBatchND BatchToSpaceND DepthToSpace EnsureShape
RaggedGather RaggedRange RaggedTensorToTensor
""".split())

# ops that reach outside the tensors: files, Python, the network, checkpoints, summaries, debugging sinks
UNSAFE_OPS = frozenset("""
WriteFile ReadFile MatchingFiles DeleteFile ImmutableConst Save SaveV2 SaveSlices Restore RestoreV2 RestoreSlice
MergeV2Checkpoints ShardedFilename ShardedFilespec PyFunc PyFuncStateless EagerPyFunc PrintV2
WholeFileReader WholeFileReaderV2 TextLineReader TextLineReaderV2 TFRecordReader TFRecordReaderV2
FixedLengthRecordReader FixedLengthRecordReaderV2 IdentityReader IdentityReaderV2 LMDBReader ReaderReadV2
ReaderRead ReaderReadUpToV2 TFRecordDataset TFRecordDatasetV2 FixedLengthRecordDataset FixedLengthRecordDatasetV2
TextLineDataset CSVDataset CSVDatasetV2 SnapshotDataset SnapshotDatasetV2 SaveDataset SaveDatasetV2 LoadDataset
DatasetToTFRecord ExperimentalDatasetToTFRecord InitializeTableFromTextFile InitializeTableFromTextFileV2
CreateSummaryFileWriter CreateSummaryDbWriter WriteSummary WriteScalarSummary WriteHistogramSummary
WriteImageSummary WriteAudioSummary WriteGraphSummary WriteRawProtoSummary ImportEvent FlushSummaryWriter
CloseSummaryWriter DebugIdentity DebugIdentityV2 DebugIdentityV3 DebugNanCount DebugNumericSummary
DebugNumericSummaryV2 Rpc TryRpc RpcCall RpcClient RpcServer RpcServerStart RpcServerRegister
""".split())


def graph_ops(nodes: Iterable, functions: Iterable = ()) -> set[str]:
    """Every op a GraphDef's nodes and its function library name (``node.op`` / ``function.node_def``)."""
    ops = {node.op for node in nodes}
    for function in functions:
        ops |= {node.op for node in function.node_def}
    return ops


def spec_ops(topology: dict) -> set[str]:
    """Every op a TF.js ``modelTopology`` (a GraphDef as JSON) names, its function library included."""
    ops = {str(node.get("op", "")) for node in topology.get("node", []) if isinstance(node, dict)}
    for function in (topology.get("library") or {}).get("function", []) or []:
        ops |= {str(node.get("op", "")) for node in function.get("nodeDef", []) or [] if isinstance(node, dict)}
    return ops


def refuse_non_tfjs_ops(ops: set[str], where: str) -> None:
    foreign = sorted(ops - TFJS_OPS)
    if foreign:
        raise SketchBenchError(where, f"op '{foreign[0]}' is not a TF.js op" + (
            f" (nor {', '.join(foreign[1:4])}{', …' if len(foreign) > 4 else ''})" if len(foreign) > 1 else ""),
            "a TF.js graph model may only use TF.js's own op set; re-convert it with tensorflowjs_converter")


def refuse_unsafe_ops(ops: set[str], where: str) -> None:
    unsafe = sorted(ops & UNSAFE_OPS)
    if unsafe:
        raise SketchBenchError(where, f"its serving function uses {', '.join(unsafe)}, which reach outside the "
                               "tensors (files, Python, the network)",
                               "re-export it without them, or set trust_model = true in its [models.<name>] "
                               "table if you trust whoever made it")
