// Package openkruise is a stand-in for OpenKruise's CloneSet, Advanced
// StatefulSet and Advanced DaemonSet controllers and their defaulting
// webhooks, for a local
// control plane where the real ones cannot run (OpenKruise's Go modules are
// not on the module proxy). It creates, updates and deletes real pods (kwok
// makes them Running and Ready) and writes the labels, status and
// ControllerRevisions OpenKruise v1.9 writes, so that a release controller
// tested against it meets what it would meet on a cluster.
//
//	openkruise.Install(ctx, cfg)                  // the CRDs
//	s, err := openkruise.Start(ctx, cfg, openkruise.Options{})
//	defer s.Stop()
//
// What it reproduces, and where OpenKruise does it (openkruise/kruise at
// v1.9.0; apis/ are in openkruise/kruise-api too):
//
// CloneSet (pkg/controller/cloneset)
//   - Revisions: ControllerRevision <name>-<hash> holding the template,
//     hashed as history.NewControllerRevision does (revision.go); reused
//     when the template goes back to an older one, whose number is raised
//     (cloneset_controller.go getActiveRevisions); annotated with the
//     CloneSet's annotations and an empty
//     kruise.io/cloneset-volumeclaimtemplate-hash; the oldest dead ones
//     beyond revisionHistoryLimit deleted (truncateHistory).
//   - Pods (core/cloneset_core.go newVersionedPods, sync/cloneset_scale.go
//     createPods): named <name>-<5-character instance id>; labels
//     controller-revision-hash=<name>-<hash> (the full revision name: the
//     CloneSetShortHash gate, which would make it the hash alone, is off by
//     default), pod-template-hash=<hash> (always the short hash:
//     utils/cloneset_utils.go WriteRevisionHash),
//     apps.kruise.io/cloneset-instance-id=<id>, lifecycle.apps.kruise.io/state
//     PreparingNormal, Normal once scheduled (sync/cloneset_update.go
//     refreshPodState); the CloneSet as controller owner; readiness gates
//     InPlaceUpdateReady (inplaceupdate.InjectReadinessGate) and
//     KruisePodReady (the pod webhook), whose conditions are set True.
//   - Status (cloneset_status.go calculateStatus): replicas, readyReplicas,
//     availableReplicas, updatedReplicas, updatedReadyReplicas,
//     updatedAvailableReplicas, expectedUpdatedReplicas (replicas -
//     partition), observedGeneration, currentRevision and updateRevision (full
//     names), collisionCount, labelSelector. currentRevision becomes the
//     update revision once all spec.replicas pods carry it, ready or not.
//   - Partition (sync/cloneset_sync_utils.go calculateDiffsWithExpectation):
//     replicas - partition pods run the update revision (10 replicas,
//     partition 7 → 3); a percentage is rounded up, and one below 100% keeps
//     at least one pod updating. Raising the partition again does not roll
//     updated pods back: that needs the CloneSetPartitionRollback gate, off
//     by default. maxUnavailable (default 20%, 10 pods → 2) bounds the pods
//     being updated; maxSurge (default 0) adds new pods before old ones go.
//   - ReCreate update (sync/cloneset_update.go updatePod): the old pod is
//     labelled apps.kruise.io/specified-delete=true, then Scale deletes it
//     (within maxUnavailable) and creates the replacement at the update
//     revision; a pass that scaled does not update (cloneset_controller.go
//     syncCloneSet).
//
// Advanced StatefulSet (pkg/controller/statefulset)
//   - Pods <name>-<ordinal> labelled controller-revision-hash=<full revision
//     name>, statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index
//     (PodIndexLabel gate, on by default), lifecycle state Normal; hostname
//     and subdomain (stateful_set_utils.go newVersionedStatefulSetPod,
//     initIdentity); readiness gate KruisePodReady.
//   - OrderedReady (the default): pods created upwards, one at a time, each
//     once the ones below are available; surplus ones deleted downwards;
//     Parallel does both at once (stateful_set_control.go updateStatefulSet).
//   - Rolling update (rollingUpdateStatefulsetPods, sortPodsToUpdate): from
//     the top ordinal down to the partition (partition 5 of 10 updates 5–9),
//     at most maxUnavailable (default 1, a percentage rounded down) pods
//     down at once. Pods below the partition are never touched, so raising
//     the partition leaves pods already updated as they are; a pod below the
//     partition that is recreated gets the current revision.
//   - Status (updateStatus, completeRollingUpdate): as a native StatefulSet's
//     plus updatedReadyReplicas, updatedAvailableReplicas, labelSelector;
//     currentRevision moves on once every pod is updated and ready.
//
// Advanced DaemonSet (pkg/controller/daemonset, apps.kruise.io/v1alpha1)
//   - Revisions: ControllerRevision <name>-<hash>, hash = ComputeHash of the
//     template with status.collisionCount (daemonset_history.go), labelled
//     with the template's labels and controller-revision-hash=<hash>; the
//     current template's one renumbered to the newest; dead ones beyond
//     revisionHistoryLimit deleted.
//   - Pods: one per node whose labels match the template's nodeSelector,
//     generateName <name>-, controller-revision-hash=<hash>, the default
//     daemon tolerations, a required node affinity metadata.name In [node]
//     (ReplaceDaemonSetPodNodeNameNodeAffinity; the scheduler binds it),
//     readiness gate KruisePodReady (the pod webhook), the DaemonSet as
//     controller owner.
//   - Standard rolling update without surge (daemonset_update.go
//     rollingUpdate, filterDaemonPodsNodeToUpdate): nodes in reverse name
//     order, updated ones first; only desiredNumberScheduled - partition
//     of them may update (partition: number or percentage rounded down);
//     unavailable old pods replaced at once, available ones while fewer
//     than maxUnavailable (default 1, percentage rounded up) are down.
//     rollingUpdate.paused stops it; OnDelete never updates.
//   - Status (updateDaemonSetStatus): desiredNumberScheduled,
//     currentNumberScheduled, numberMisscheduled, numberReady,
//     updatedNumberScheduled, numberAvailable, numberUnavailable,
//     observedGeneration, daemonSetHash (the v1alpha1 name of v1beta1's
//     updateRevision).
//
// Defaulting webhooks (pkg/webhook/{cloneset,statefulset,daemonset}/mutating,
// apis/apps/defaults): on CREATE and UPDATE, absent fields get their
// defaults, so a partition a client removes comes back as 0 (defaults.go).
// The template is defaulted as a pod spec (imagePullPolicy Always) on
// create and whenever it changes. The Advanced DaemonSet's webhook
// (SetDefaultsDaemonSet) defaults neither its template nor its partition.
//
// Not reproduced: the Advanced DaemonSet's surge, in-place update,
// rollingUpdate.selector, lifecycle hooks, image pre-download, node
// affinity and taints other than nodeSelector, and its v1beta1 version;
// in-place updates (InPlaceIfPossible is played as
// ReCreate; OpenKruise would keep the pod and swap the image), lifecycle
// hooks, volumeClaimTemplates and PVCs, reserveOrdinals, unordered
// updates, adoption of orphan pods and revisions, Events, the
// progressDeadlineSeconds condition, the validating webhooks, and pod
// deletion ranking by node (surplus pods go in ActivePods order).
package openkruise
